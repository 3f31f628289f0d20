"""TqdmProgress in Jupyter: a real notebook, run headlessly by nbclient on an ipykernel.

The notebook downloads a file from the session's nginx with ``TqdmProgress()`` and no options,
as a user would. The test then reads the executed notebook: the progress must have been shown as
widgets (``application/vnd.jupyter.widget-view+json`` outputs, not text bars), and the widget
state that nbclient saved must hold progress models that ended at the file's size.

Without nbclient, ipykernel or ipywidgets the test is skipped locally and fails under CI.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest
from servers import NginxServer, make_data

NEEDED = ("nbclient", "nbformat", "ipykernel", "ipywidgets")


def require_jupyter() -> None:
    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if not missing:
        return
    message = f"not installed: {', '.join(missing)} (the 'test' dependency group has them)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must install them", pytrace=False)
    pytest.skip(message)


def test_tqdm_progress_renders_widgets_in_a_notebook(
    nginx: NginxServer, unique_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_jupyter()
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core's migration warning
    import nbformat
    from nbclient import NotebookClient

    size = 3 * (1 << 20) + 12345
    data = make_data(size, seed=77)
    url = nginx.add(f"{unique_prefix}/shard.tar", data)
    dest = tmp_path / "shard.tar"
    code = f"""
import sys
import resumable
from resumable.progress.bars import _isatty
print("kernel stream draws bars:", _isatty(sys.stderr))  # even without ipywidgets
bars = resumable.TqdmProgress()
print("style:", bars.style)
with bars:
    r = resumable.download({url!r}, {str(dest)!r}, sha256={hashlib.sha256(data).hexdigest()!r},
                           progress=bars)
print("result:", r.status, r.size)
"""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(code))
    NotebookClient(nb, timeout=60, kernel_name="python3", store_widget_state=True).execute()

    outputs = nb.cells[0].outputs
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "style: bars" in text
    assert "kernel stream draws bars: True" in text
    assert f"result: downloaded {size}" in text
    assert dest.read_bytes() == data

    views = [
        o.data["application/vnd.jupyter.widget-view+json"]["model_id"]
        for o in outputs
        if o.output_type == "display_data"
        and "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert len(views) == 2  # the overall bar and the file's bar

    state: dict[str, Any] = nb.metadata.widgets["application/vnd.jupyter.widget-state+json"][
        "state"
    ]
    bars = [m["state"] for m in state.values() if m["model_name"] == "FloatProgressModel"]
    assert len(bars) == 2
    assert all(b["max"] == size and b["value"] == size for b in bars)
    labels = [  # tqdm pads its HTML labels with figure spaces
        m["state"]["value"].replace("\u2007", " ")
        for m in state.values()
        if m["model_name"] == "HTMLModel"
    ]
    assert any(label.startswith("1 file: 100%") for label in labels)
    assert any(label.startswith("shard.tar: 100%") for label in labels)
