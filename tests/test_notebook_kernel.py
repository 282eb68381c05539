"""The quickstart notebook executed headless in a real Jupyter kernel: the form, 3 epochs with the live view on, widget and image outputs."""
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
    # the live view: one text output and one pictures output of the fit cell, each updated in place
    fit_cell = next(c for c in nb.cells if c.cell_type == "code" and "trainer.fit(" in c.source)
    live = [o for o in fit_cell.outputs if "autotimm-live" in o.get("data", {}).get("text/html", "")]
    pictures = [o for o in fit_cell.outputs if "autotimm-pictures" in o.get("data", {}).get("text/html", "")]
    assert len(live) == 1 and len(pictures) == 1, [o.output_type for o in fit_cell.outputs]
    html = live[0]["data"]["text/html"]
    assert "Epoch 3/3" in html and "Trained 3 epochs" in html and "data:image/png" not in html
    pics = pictures[0]["data"]["text/html"]
    assert pics.count("data:image/png;base64,") == 2
    png = base64.b64decode(pics.split("data:image/png;base64,")[1].split('"')[0])
    assert png[:4] == b"\x89PNG"
    runs_cell = next(c for c in nb.cells if c.cell_type == "code" and "%autotimm runs" in c.source)
    table = runs_cell.outputs[0]["data"]["text/html"]
    assert "tensorboard" in table and "csv" in table and "val/accuracy" in table
    assert (workdir / "runs" / "csv" / "lightning_logs" / "version_0" / "metrics.csv").exists()
