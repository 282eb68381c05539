"""Real-browser test in Notebook 7 (issue 11 asks for JupyterLab *and* Notebook 7): the quickstart tutorial run in headless
Chromium, with the logger form, the live view during and after a 3-epoch `fit` and the runs table, screenshots saved into
tests/screenshots/ (nb7_*.png). The JupyterLab tests and their helpers are in test_browser.py."""
import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from autotimm.backends import list_backends
from test_browser import IMAGES, TUTORIALS, WATCH, Screenshots, box, browser, jupyter_env, run_all, serve

try:
    import notebook
    NOTEBOOK7 = int(notebook.__version__.split(".")[0]) >= 7
except ImportError:
    NOTEBOOK7 = False

pytestmark = pytest.mark.skipif(not NOTEBOOK7, reason="Notebook 7 is not installed (pip install 'notebook>=7')")
REPO = Path(__file__).parent.parent


@pytest.fixture
def notebook7_server(tmp_path):
    "`jupyter notebook` (Notebook 7) on 127.0.0.1 serving `tmp_path/nb`: `(base url, token, root)`; stopped after the test."
    root = tmp_path / "nb"
    root.mkdir()
    env = jupyter_env(tmp_path, ("CONFIG", "RUNTIME", "DATA"))
    # the kernel is this Python, importing the autotimm of this tree (the user data dir comes first in the kernelspec search)
    spec = tmp_path / "data" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "Python 3 (ipykernel)",
        "language": "python", "env": {"PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}}))
    yield from serve("notebook", tmp_path, root, env)


def test_quickstart_in_notebook7(notebook7_server, tmp_path):
    "The form as widgets; bars with ETA and a row per epoch while training; curves beside the matrix; the closing line; the runs table."
    from playwright.sync_api import sync_playwright
    base, token, root = notebook7_server
    (root / "tutorials").mkdir()
    shutil.copytree(IMAGES, root / "images")  # the tutorial's picture (../images/live_view.png) shows as in the docs
    nb = json.loads((TUTORIALS / "quickstart.ipynb").read_text())
    for c in nb["cells"]:
        c["source"] = re.sub(r"max_epochs=\d+", "max_epochs=3", "".join(c["source"]))
    (root / "tutorials" / "quickstart.ipynb").write_text(json.dumps(nb))
    shot = Screenshots(tmp_path)
    with sync_playwright() as p:
        b = browser(p)
        try:
            page = b.new_page(viewport={"width": 1280, "height": 1000})
            run_all(page, f"{base}/notebooks/tutorials/quickstart.ipynb?token={token}")  # Notebook 7 has JupyterLab's toolbar and menus
            page.evaluate(WATCH)
            form = page.locator(".autotimm-form").first
            form.wait_for(timeout=60_000)
            form.locator("button", has_text="Build configs").wait_for(timeout=15_000)
            form.evaluate("e => e.scrollIntoView()")
            checkboxes = form.locator(".widget-checkbox").count()
            backends = set(list_backends())  # one checkbox a section; fields have their own
            ticked = [t.strip() for t in form.locator(".widget-checkbox:has(input:checked)").all_inner_texts() if t.strip() in backends]
            shot(page, "nb7_form.png")
            view = page.locator(".autotimm-live").first
            view.wait_for(timeout=120_000)
            page.locator(".autotimm-epochs tbody tr").nth(1).wait_for(timeout=120_000)  # mid-training: two epochs done
            page.locator("details.autotimm-lightning").first.evaluate("e => e.scrollIntoView()")
            during = view.inner_text()
            during_rows = page.locator(".autotimm-epochs tbody tr").count()
            shot(page, "nb7_live_during.png")
            page.locator(".autotimm-done").wait_for(timeout=120_000)
            page.locator("details.autotimm-lightning").first.evaluate("e => e.scrollIntoView()")
            shot(page, "nb7_live_after.png")
            text = view.inner_text()
            rows = page.locator(".autotimm-epochs tbody tr").count()
            bars = page.locator(".autotimm-live progress").count()
            row, curves, cm = box(page, ".autotimm-row"), box(page, ".autotimm-curves img"), box(page, ".autotimm-cm img")
            nodes = page.evaluate("() => ({text: window.__nodes.text, pictures: window.__nodes.pictures})")
            # every cell done: the runs table is the last output but one
            page.wait_for_function("() => document.querySelectorAll('.jp-InputArea-prompt').length > 0 && "
                                   "![...document.querySelectorAll('.jp-InputArea-prompt')].some(e => e.textContent.includes('*'))",
                                   timeout=120_000)
            runs = page.locator(".jp-OutputArea-output", has=page.locator("table.dataframe")).last
            runs.evaluate("e => e.scrollIntoView()")
            runs_text = runs.inner_text()
            shot(page, "nb7_runs.png")
            widget_errors = page.get_by_text("Error displaying widget").count()
            output = page.locator(".jp-OutputArea-output").all_inner_texts()
        finally:
            b.close()
    shot.keep()
    # the form rendered as widgets, prefilled with the tutorial's two backends
    assert checkboxes >= len(backends) and ticked == ["csv", "tensorboard"] and widget_errors == 0
    # the bars with elapsed<ETA and speed, and a row per finished epoch, while training
    assert re.search(r"Epoch \d/3", during) and re.search(r"\[\d\d:\d\d<\d\d:\d\d, [\d.]+ (batch/s|s/batch)\]", during)
    assert "train" in during and "validate" in during and during_rows >= 2
    assert bars == 3 and rows == 3 and "★" in text and "best epoch by val/accuracy (max)" in text
    # the closing line
    assert re.search(r"Trained 3 epochs in \d\d:\d\d · best epoch \d: val/accuracy", text) and "best checkpoint" in text
    # curves and matrix side by side inside the output, nothing wrapped
    assert abs(curves["y"] - cm["y"]) < 40 and cm["x"] >= curves["x"] + curves["width"]
    assert cm["x"] + cm["width"] <= row["x"] + row["width"] <= 1280
    # the pictures were built once an epoch (plus the empty placeholder), the text more often
    assert nodes["pictures"] <= 3 + 1 and nodes["text"] > nodes["pictures"]
    # Lightning's model summary is folded, not around the view; the runs table has the run, finished
    assert not any("Trainable params" in o for o in output)
    assert "version_0" in runs_text and "finished" in runs_text
