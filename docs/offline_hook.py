"""An mkdocs hook that keeps the exercise pages offline: nbconvert's page template (which
mkdocs-jupyter renders the practice exercises with) carries a script that would import mermaid from
a CDN when a notebook holds a mermaid diagram. The exercises hold none, so the script is dropped."""

from __future__ import annotations

import re

MERMAID_LOADER = re.compile(r'<script type="module">(?:(?!</script>).)*?mermaid(?:(?!</script>).)*</script>', re.DOTALL)


def on_post_page(output: str, *, page, config) -> str:
    if not page.file.src_uri.startswith("practice/"):
        return output
    stripped, count = MERMAID_LOADER.subn("", output)
    if count > 1:
        raise ValueError(f"{page.file.src_uri}: {count} mermaid loaders where the page template has one")
    return stripped
