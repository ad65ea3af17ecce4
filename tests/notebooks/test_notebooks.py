"""The tutorial notebooks: stored without outputs, and each runs top to bottom without error.

Each notebook is executed with nbclient in a fresh ``python3`` kernel whose working directory
is ``notebooks/`` and whose ``PYTHONPATH`` starts with this checkout (so the kernel imports the
``carkinetics`` under test, not another installed copy); figures are rendered by the
(headless) inline backend. A cell that raises -- including the
``assert`` sanity checks inside the notebooks (convergence, BLQ fraction, bias of M1 vs M3,
operating characteristics...) -- fails the test; so does any warning printed to stderr.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbclient  # dev dependencies (pyproject.toml [dev]), with ipykernel
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))
EXPECTED = ["01_ck_fitting.ipynb", "02_pd_exposure_response.ipynb",
            "03_dose_escalation.ipynb"]
# printed after the notebooks' main checks: an output that must be there
FINAL_MARKERS = {
    "01_ck_fitting.ipynb": "inside the 95 % CIs",
    "02_pd_exposure_response.ipynb": "exposure-response fits:",
    "03_dose_escalation.ipynb": "recommendation:",
}


def test_the_three_notebooks_are_present():
    assert [p.name for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_clean(path):
    """The checked rule: no outputs, no execution counts, python3 kernel, valid format."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "a notebook without code cells"
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"cells {dirty} have outputs or execution counts: clear them"
    assert all(not c.metadata.get("execution") for c in nb.cells)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


def _kernel_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    # the inline backend (headless) renders every displayed figure to PNG, so that drawing
    # problems (e.g. a log axis without positive values) surface as errors or warnings
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    env.pop("PYTHONWARNINGS", None)
    return env


def _stream_text(nb, name: str) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs if o.output_type == "stream" and o.name == name)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path):
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", allow_errors=False,
        resources={"metadata": {"path": str(NB_DIR)}})
    client.execute(env=_kernel_env(), cwd=str(NB_DIR))
    stdout, stderr = _stream_text(nb, "stdout"), _stream_text(nb, "stderr")
    # the kernel imported this checkout's package (each notebook prints where from)
    assert f"from {ROOT / 'carkinetics'}" in stdout
    assert "Warning" not in stderr and "Traceback" not in stderr, stderr[-2000:]
    assert FINAL_MARKERS[path.name] in stdout
    # every figure shown with the notebooks' show(fig) helper was rendered
    code = [c for c in nb.cells if c.cell_type == "code"]
    n_show = sum(line.lstrip().startswith("show(") for c in code
                 for line in c.source.splitlines())
    n_png = sum("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    assert n_show >= 1 and n_png == n_show, (n_png, n_show)
