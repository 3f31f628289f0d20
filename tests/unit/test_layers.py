"""The one-way layers, beyond what import-linter checks (``nox -s lint`` runs its contracts):
no module imports another module's private names, and none reads another object's private
attributes. A layer above that needs something makes it public in the layer below.

The only private names read are third-party ones we subclass or must reach (listed with the
reason), and a class's own instances (``other._x`` inside the class that defines ``_x``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import resumable

PACKAGE = Path(resumable.__file__).parent

# (module, attribute): third-party internals, each for a reason given at the use.
THIRD_PARTY = {
    ("sources/fsspec.py", "_strip_protocol"),  # fsspec's path normaliser (no public spelling)
    ("sources/_fsspec_cloud.py", "_format_path"),  # gcsfs: bucket/key split
    ("sources/_fsspec_cloud.py", "_set_session"),  # gcsfs: the session its requests use
    ("sources/_fsspec_cloud.py", "_get_headers"),  # gcsfs: auth headers for a ranged GET
    ("sources/_fsspec_cloud.py", "_get_params"),  # gcsfs: its query parameters
    ("sources/_fsspec_cloud.py", "_client"),  # azure-storage-blob: its generated Get Blob
    ("sources/_http_wire.py", "_new_conn"),  # urllib3 HTTPConnection, overridden
    ("sources/_http_wire.py", "_read_status"),  # http.client HTTPResponse, overridden
}


def _modules() -> list[tuple[str, ast.Module]]:
    return [
        (str(path.relative_to(PACKAGE)), ast.parse(path.read_text()))
        for path in sorted(PACKAGE.rglob("*.py"))
    ]


def _own_private(tree: ast.Module) -> set[str]:
    """Private names a module's own classes define: assigned (``self._x = ...``) or methods."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            names.update(f.name for f in node.body if isinstance(f, ast.FunctionDef))
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)  # slots/dataclass fields
    return {name for name in names if name.startswith("_")}


def test_no_module_imports_a_private_name_of_another() -> None:
    found = [
        f"{name}:{node.lineno} from {node.module} import {alias.name}"
        for name, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.name.startswith("_") and alias.name != "__version__"
    ]
    assert found == []


def test_no_module_reads_another_objects_private_attributes() -> None:
    found = []
    for name, tree in _modules():
        own = _own_private(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
                continue
            if node.attr.startswith("__") or node.attr in own:
                continue  # dunders, and a class's own private state (self or another instance)
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            if (name, node.attr) not in THIRD_PARTY:
                found.append(f"{name}:{node.lineno} {ast.unparse(node)}")
    assert found == []


def test_the_checks_find_what_they_look_for() -> None:
    """Both checks on a module written to break them: they can fail."""
    bad = ast.parse("from resumable.sources import _lock\ndef f(job):\n    return job._ledger\n")
    imports = [n for n in ast.walk(bad) if isinstance(n, ast.ImportFrom)]
    assert imports[0].names[0].name.startswith("_")
    reads = [n for n in ast.walk(bad) if isinstance(n, ast.Attribute)]
    assert reads[0].attr == "_ledger"
    assert reads[0].attr not in _own_private(bad)
