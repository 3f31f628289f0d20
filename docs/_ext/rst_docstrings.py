"""A griffe extension: the library's docstrings, written for ``help()`` and Sphinx-style
roles, rendered cleanly by mkdocstrings (which reads Markdown).

- ``:class:`~resumable.Job``` and the other roles become inline code (``Job``);
- doctest examples (``>>>`` lines and their output) become fenced ``pycon`` blocks, without
  their ``# doctest:`` directives.

The docstrings stay plain text for ``help()`` and doctest; only the site's copy changes.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|attr|exc|data|obj|const):`~?([^`]+)`")
_DIRECTIVE = re.compile(r"\s+# doctest:.*$")


def _role(match: re.Match[str]) -> str:
    target = match.group(1)
    if match.group(0).split("`", 1)[1].startswith("~"):
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


def convert(text: str) -> str:
    """Roles to code, doctest blocks to fences."""
    out: list[str] = []
    in_block = False
    for line in _ROLE.sub(_role, text).splitlines():
        stripped = line.lstrip()
        if not in_block and stripped.startswith(">>>"):
            indent = line[: len(line) - len(stripped)]
            out.append(f"{indent}```pycon")
            in_block = True
        elif in_block and not stripped:
            out.append(f"{indent}```")
            in_block = False
        out.append(_DIRECTIVE.sub("", line) if in_block else line)
    if in_block:
        out.append(f"{indent}```")
    return "\n".join(out)


class RstDocstrings(griffe.Extension):
    """Rewrite each docstring once it is loaded."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
