"""The documentation and the public surface agree; the library does not print.

The site itself is built strictly by ``nox -s docs`` (part of ``.ci/run``): a broken link, a
missing anchor or a docstring mkdocstrings cannot parse fails CI there. These checks are the
fast part that belongs in the test suite.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import resumable

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def test_every_public_name_is_in_the_api_reference() -> None:
    api = (DOCS / "api.md").read_text()
    # ``adownload`` is loaded lazily (no asyncio at import): documented from its module.
    documented = set(re.findall(r"^::: resumable\.(?:aio\.)?(\w+)$", api, re.M))
    assert documented == set(resumable.__all__) - {"__version__"}
    assert "__version__" in api


def test_every_public_method_has_a_docstring() -> None:
    missing = []
    for name in resumable.__all__:
        obj = getattr(resumable, name)
        if not inspect.isclass(obj):
            continue
        for member, value in vars(obj).items():
            if member.startswith("_"):
                continue
            func = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
            if (callable(func) or isinstance(func, property)) and not inspect.getdoc(func):
                missing.append(f"{name}.{member}")
    assert missing == []


def test_every_page_is_in_the_nav() -> None:
    """A page missing from mkdocs.yml's nav only gets an INFO line from mkdocs: catch it here."""
    config = (ROOT / "mkdocs.yml").read_text()
    nav = set(re.findall(r"^\s+- (?:[^:\n]+: )?([\w./-]+\.md)$", config, re.M))
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md") if "_ext" not in p.parts}
    assert pages - nav == set(), "add these pages to the nav in mkdocs.yml"
    assert nav - pages == set(), "the nav names pages that do not exist"


def _print_calls(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "print"
    ]


def test_the_library_never_prints() -> None:
    """Output is the command line's job (resumable/cli.py); the library logs or calls back."""
    package = ROOT / "resumable"
    found = {
        path.relative_to(ROOT).as_posix(): lines
        for path in package.rglob("*.py")
        if path.name != "cli.py" and (lines := _print_calls(path))
    }
    assert found == {}
    assert _print_calls(package / "cli.py")  # the check can see a print() where there is one
