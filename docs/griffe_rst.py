"""A griffe extension for the API pages: grukit's docstrings use a few reStructuredText forms, which
mkdocstrings would otherwise print raw (its docstrings are Markdown).

- a ``.. math::`` block becomes a ``text`` code block of the same lines (no math library is loaded:
  the site builds offline);
- ``:class:`~a.b.C``` and the other roles become inline code (``C`` with ``~``, ``a.b.C`` without);
- ````double backticks```` become single ones;
- a bracketed span that is not an identifier, such as ``[x̂; m; δ]``, is escaped, so that it is not
  read as a cross-reference that cannot resolve;
- an attribute without a docstring takes its trailing comment (and the comment lines indented under
  it) as one: the frozen configs document their fields that way.
"""

from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:class|func|meth|attr|mod|obj|data|exc):`(~?)([^`]+)`")
_DOUBLE = re.compile(r"``([^`]+)``")
_BRACKETS = re.compile(r"(?<![\\\]`])\[([^\]\[`]*)\](?![\[(])")
_CODE = re.compile(r"(`[^`]*`)")
_IDENTIFIER = re.compile(r"^[A-Za-z_][\w.]*$")


def _role(match: re.Match) -> str:
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


def _escape(match: re.Match) -> str:
    inner = match.group(1)
    if _IDENTIFIER.match(inner):
        return match.group(0)
    return f"\\[{inner}\\]"


def _math_blocks(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        if stripped.startswith(".. math::"):
            indent = len(line) - len(stripped)
            body: list[str] = []
            i += 1
            while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
                body.append(lines[i])
                i += 1
            while body and not body[-1].strip():
                body.pop()
            inner = min((len(b) - len(b.lstrip()) for b in body if b.strip()), default=0)
            pad = " " * indent
            out += ["", pad + "```text", *(pad + b[inner:] for b in body), pad + "```", ""]
            continue
        out.append(line)
        i += 1
    return out


def convert(text: str) -> str:
    """The docstring `text` with the reStructuredText forms above turned into Markdown."""
    lines = _math_blocks(text.splitlines())
    converted, fenced = [], False
    for line in lines:
        if line.lstrip().startswith("```"):
            fenced = not fenced
            converted.append(line)
            continue
        if not fenced:
            line = _DOUBLE.sub(r"`\1`", _ROLE.sub(_role, line))
            parts = _CODE.split(line)  # code spans at odd positions stay as written
            line = "".join(part if k % 2 else _BRACKETS.sub(_escape, part) for k, part in enumerate(parts))
        converted.append(line)
    return "\n".join(converted)


def field_comment(attribute: griffe.Attribute) -> str | None:
    """The trailing comment of an attribute's line, with the comment-only lines aligned under it."""
    if attribute.lineno is None or attribute.filepath is None or isinstance(attribute.filepath, list):
        return None
    try:
        lines = attribute.lines_collection[attribute.filepath]
    except KeyError:
        return None
    first = lines[attribute.lineno - 1]
    if "  # " not in first:
        return None
    column = first.index("  # ") + 2
    parts = [first[column + 2:].strip()]
    for line in lines[attribute.endlineno or attribute.lineno:]:
        stripped = line.lstrip()
        if not stripped.startswith("#"):
            break
        text = line[line.index("#") + 1:]
        if len(line) - len(text.lstrip()) < column:  # continues only if aligned under the comment's text
            break
        parts.append(text.strip())
    return " ".join(part for part in parts if part) or None


class RestructuredText(griffe.Extension):
    """Rewrites every docstring as it is loaded (see the module docstring)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is None and isinstance(obj, griffe.Attribute):
            comment = field_comment(obj)
            if comment is not None:
                obj.docstring = griffe.Docstring(comment, parent=obj)
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
