"""GRU kernel benchmark: grukit backends vs torch.nn.GRU (same as `grukit bench`).

    python benchmarks/bench_kernels.py [--quick | --targets] [--json results.json]
"""

from grukit.app.cli import app

if __name__ == "__main__":
    app(["bench", *__import__("sys").argv[1:]])
