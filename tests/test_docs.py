"""The documentation's examples run as written, and the site builds offline.

Every ```python block of README.md and docs/*.md is executed on its own (a fresh namespace, as a
reader would paste it), in a temporary directory, twice in a row: an example that writes files must
not fail the second time. Blocks that are not meant to run use another fence language (bash,
text, console).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """(line number, code) of each ```python block in `path`."""
    text = path.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        if match.group(1).strip() == "python":
            blocks.append((text.count("\n", 0, match.start()) + 1, match.group(2)))
    return blocks


def test_pages_have_examples():
    assert (ROOT / "docs" / "index.md").is_file()
    assert python_blocks(ROOT / "README.md"), "README.md should show a Python example"


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_python_examples_run_twice(page, tmp_path, monkeypatch):
    blocks = python_blocks(page)
    monkeypatch.chdir(tmp_path)
    for attempt in (1, 2):
        for line, code in blocks:
            try:
                exec(compile(code, f"{page.name}:{line}", "exec"), {"__name__": "__docs__"})
            except Exception as error:
                raise AssertionError(f"{page.name}, block at line {line}, run {attempt}: {error!r}") from error


def test_shell_examples_use_existing_commands_and_options():
    """Each `grukit CMD --option …` in a shell block names a command the CLI has, and options it takes."""
    import typer.main

    from grukit.app.cli import app

    commands = typer.main.get_command(app).commands
    for page in PAGES:
        for match in FENCE.finditer(page.read_text(encoding="utf-8")):
            if match.group(1).strip() not in ("bash", "console", "sh"):
                continue
            for line in match.group(2).splitlines():
                line = line.split(" #")[0]
                command = re.match(r"\s*(?:\$\s+)?(?:\S*/)?grukit\s+([a-z][\w-]*)(.*)", line)
                if command is None:
                    continue
                used, rest = command.groups()
                assert used in commands, f"{page.name}: `grukit {used}` is not a command ({sorted(commands)})"
                options = {"--help"}
                for param in commands[used].params:
                    options.update(param.opts, param.secondary_opts)
                for option in re.findall(r"(?<!\S)(--[a-z][\w-]*)", rest):
                    assert option in options, f"{page.name}: `grukit {used}` has no option {option}: {line.strip()}"


def build_site(out: Path, *, run_exercises: bool) -> Path:
    """mkdocs build --strict into `out`, with or without running the practice exercises for their
    outputs; it passes with no warning and no page loads anything from another host."""
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    if mkdocs is None:
        pytest.skip("mkdocs is not installed (the dev extra)")
    site = out / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT / "src"),
           "GRUKIT_DOCS_EXECUTE": "true" if run_exercises else "false"}
    result = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(site)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    remote = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//"""  # a script, style sheet, font or link
                        r"""|url\(\s*["']?(?:https?:)?//|@import\s+["']?https?:""")
    for page in site.rglob("*"):
        if page.suffix in (".html", ".css", ".js"):
            text = page.read_text(encoding="utf-8", errors="replace")
            found = remote.search(text)
            assert found is None, f"{page.relative_to(site)} loads {text[found.start():found.start() + 80]!r}"
            if page.suffix == ".html":
                for host in ("fonts.googleapis", "fonts.gstatic", "cdn.jsdelivr", "unpkg.com", "cdnjs"):
                    assert host not in text, f"{page.relative_to(site)} names {host}"
    return site


EXERCISES = sorted((ROOT / "docs" / "practice").glob("*.py"))
OUTPUT = re.compile(r'data-mime-type="text/plain"[^>]*>\s*<pre>(.*?)</pre>', re.DOTALL)


def test_site_builds_offline(tmp_path):
    """The site as `make test` builds it: the exercises' pages without their outputs."""
    site = build_site(tmp_path, run_exercises=False)
    for exercise in EXERCISES:
        page = (site / "practice" / exercise.name).with_suffix(".html").read_text(encoding="utf-8")
        assert "def check(" in page and not OUTPUT.search(page), exercise.name


@pytest.mark.slow
def test_exercise_pages_show_what_their_solutions_print(tmp_path):
    """As `make docs` builds it: every exercise runs, and its page shows the solution's output, the
    check's "correct: …" line included, and no error."""
    site = build_site(tmp_path, run_exercises=True)
    for exercise in EXERCISES:
        page = (site / "practice" / exercise.name).with_suffix(".html").read_text(encoding="utf-8")
        printed = "\n".join(OUTPUT.findall(page))
        assert "correct:" in printed, f"{exercise.name} shows no passed check: {printed[:300]!r}"
        assert "Traceback" not in page and "jp-OutputArea-error" not in page, exercise.name


def test_docstring_conversion():
    """The API pages' griffe extension turns grukit's reStructuredText forms into Markdown."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("griffe_rst", ROOT / "docs" / "griffe_rst.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = "A drop-in for :class:`torch.nn.GRU`, see :class:`~grukit.nn.trace.GRUTrace`.\n\n" \
           "    .. math::\n        h' = (1 - z) n + z h\n\nreads [x̂; m; δ], ``code``, `a[i, j]` and [GRU][grukit.GRU]."
    out = module.convert(text)
    assert "`torch.nn.GRU`" in out and "`GRUTrace`" in out and ":class:" not in out
    assert "```text\n    h' = (1 - z) n + z h\n    ```" in out and ".. math::" not in out
    assert "\\[x̂; m; δ\\]" in out and "`code`" in out and "`a[i, j]`" in out and "[GRU][grukit.GRU]" in out


def test_readme_links_resolve():
    """README's relative links point at files of the repository (the site checks its own links)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    assert links, "README.md should link into docs/"
    for link in links:
        assert "://" not in link, f"README.md links outside the repository: {link}"
        assert (ROOT / link).exists(), f"README.md links to {link}, which does not exist"
