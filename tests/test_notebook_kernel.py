"""The quickstart notebook executed headless in a real Jupyter kernel: the form, 2 epochs with the live view on, widget and image outputs."""
import base64
import shutil
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NBS = Path(__file__).parents[1] / "nbs"


def test_quickstart_runs_in_a_kernel_with_the_live_view(workdir):
    shutil.copy(NBS / "tutorials" / "quickstart.ipynb", workdir / "quickstart.ipynb")
    nb = nbformat.read(workdir / "quickstart.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    mimes = [m for o in outputs for m in o.get("data", {})]
    assert mimes.count("application/vnd.jupyter.widget-view+json") >= 1  # the logger form
    assert "image/png" in mimes  # %autotimm cm
    # the live view: a single output of the fit cell, updated in place, ending with curves and the confusion matrix
    fit_cell = next(c for c in nb.cells if c.cell_type == "code" and "trainer.fit(" in c.source)
    live = [o for o in fit_cell.outputs if "autotimm-live" in o.get("data", {}).get("text/html", "")]
    assert len(live) == 1, [o.output_type for o in fit_cell.outputs]
    html = live[0]["data"]["text/html"]
    assert "epoch 2/2" in html and html.count("data:image/png;base64,") == 2
    png = base64.b64decode(html.split("data:image/png;base64,")[1].split('"')[0])
    assert png[:4] == b"\x89PNG"
    runs_cell = next(c for c in nb.cells if c.cell_type == "code" and "%autotimm runs" in c.source)
    table = runs_cell.outputs[0]["data"]["text/html"]
    assert "tensorboard" in table and "csv" in table and "val/accuracy" in table
    assert (workdir / "runs" / "csv" / "lightning_logs" / "version_0" / "metrics.csv").exists()
