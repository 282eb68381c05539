"""Real-browser tests: JupyterLab on 127.0.0.1 in headless Chromium. The logger form filled and built; a tutorial's
multi-epoch `fit` with its live view (bars, table, layout, pictures sent once an epoch), screenshots during and after;
the confusion-matrix viewer's static copy in a saved notebook reopened later."""
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import free_port

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).parent / "screenshots"


def ensure_chromium():
    "Debian's chromium, installed by the test when missing (CI runs as root with apt)."
    if not Path(CHROMIUM).exists():
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, capture_output=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    return CHROMIUM


def notebook(*sources)->str:
    "A notebook's JSON with one code cell per source."
    cells = [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [], "source": src}
             for i, src in enumerate(sources)]
    return json.dumps({"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                                                                    "name": "python3"}}, "nbformat": 4, "nbformat_minor": 5})


def jupyter_env(tmp_path, dirs=("CONFIG", "RUNTIME"))->dict:
    "This process's environment with Jupyter's `dirs` (JUPYTER_<dir>_DIR) and JupyterLab's settings in `tmp_path`: per test."
    env = {**os.environ}
    for name in dirs:
        (tmp_path / name.lower()).mkdir()
        env[f"JUPYTER_{name}_DIR"] = str(tmp_path / name.lower())
    env["JUPYTERLAB_SETTINGS_DIR"] = str(tmp_path / "settings")
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(tmp_path / "workspaces")
    return env


@pytest.fixture
def lab_server(tmp_path):
    "JupyterLab serving `tmp_path/lab` (the test writes its notebooks there): `(base url, token, root)`; stopped after the test."
    root = tmp_path / "lab"
    root.mkdir()
    yield from serve("lab", tmp_path, root, jupyter_env(tmp_path), "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate")


def serve(app, tmp_path, root, env, *extra):
    "Run `jupyter <app>` (lab or notebook) on a free loopback port serving `root`; yield `(base url, token, root)`; stop it."
    port, token = free_port(), secrets.token_hex(16)
    jupyter = Path(sys.executable).parent / "jupyter"
    log = open(tmp_path / f"{app}.log", "wb")
    proc = subprocess.Popen([str(jupyter), app, "--no-browser", "--ip=127.0.0.1", f"--port={port}", f"--ServerApp.root_dir={root}",
                             f"--IdentityProvider.token={token}", "--ServerApp.open_browser=False", *extra]
                            + (["--allow-root"] if os.geteuid() == 0 else []),
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2); break
        except Exception:
            if proc.poll() is not None or time.time() > deadline:
                if proc.poll() is None: os.killpg(proc.pid, 9)
                raise RuntimeError((tmp_path / f"{app}.log").read_text()[-3000:])
            time.sleep(0.3)
    try: yield base, token, root
    finally:
        os.killpg(proc.pid, 15)
        try: proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9); proc.wait()


@pytest.fixture
def lab(lab_server):
    "The URL of a notebook that shows the form."
    base, token, root = lab_server
    (root / "form.ipynb").write_text(notebook("from autotimm import LoggerForm\nform = LoggerForm()\nform"))
    return f"{base}/lab/tree/form.ipynb?token={token}"


def browser(p):
    return p.chromium.launch(executable_path=ensure_chromium(), args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"])


def run_all(page, url):
    "Open `url`, wait for the kernel, run every cell."
    page.goto(url)
    # the kernel is ready when its name shows in the toolbar (the idle dot shows earlier)
    page.locator(".jp-Toolbar-kernelName").filter(has_text="Python 3").wait_for(timeout=60_000)
    page.locator(".jp-Notebook").click()
    page.locator(".lm-MenuBar-item", has_text="Run").click()
    page.locator(".lm-Menu-item:visible", has_text="Run All Cells").first.click()


class Screenshots:
    "Full-page screenshots taken into `folder` while the browser runs; `keep()` copies them into tests/screenshots/."
    def __init__(self, folder): self.folder, self.names = Path(folder), []
    def __call__(self, page, name):
        page.screenshot(path=str(self.folder / name), full_page=True)
        self.names.append(name)
    def keep(self):
        SCREENSHOTS.mkdir(exist_ok=True)
        for name in self.names: shutil.copy(self.folder / name, SCREENSHOTS / name)


def test_form_in_jupyterlab_in_chromium(lab, tmp_path):
    "Type as a user: a message appears beside its field without moving the input, goes when fixed; 'abc' is refused; Build."
    from playwright.sync_api import sync_playwright
    shot = Screenshots(tmp_path)
    with sync_playwright() as p:
        b = browser(p)
        try:
            page = b.new_page(viewport={"width": 1280, "height": 1400})
            run_all(page, lab)
            form = page.locator(".autotimm-form").first
            form.wait_for(timeout=60_000)
            no_news = page.locator(".jp-toast-button", has_text="No")  # JupyterLab's "get news?" question
            if no_news.count(): no_news.first.click()
            section = lambda name: form.locator(".widget-vbox").filter(has=page.locator(".widget-checkbox", has_text=name)).last
            def row(sec, label): return section(sec).locator(".widget-hbox").filter(has=page.get_by_text(label, exact=True))
            def message(sec, label, present=True, says=""):
                "The error beside a field, once one that `says` this shows (or once it is gone)."
                err = row(sec, label).locator(".autotimm-error", has_text=says)
                err.wait_for(state="visible" if present else "detached", timeout=15_000)
                return err.inner_text() if present else ""
            # the root folder at the top says where everything goes
            assert "%autotimm runs runs" in form.locator(".widget-hbox", has_text="root folder").inner_text()
            # CSV: a number field refuses 'abc' and '-5' beside it, keeps what was typed, and the input does not move
            form.locator(".widget-checkbox", has_text="csv").locator("input").check()
            n = row("csv", "flush_logs_every_n_steps").locator("input")
            n.wait_for()
            before = n.bounding_box()
            n.fill("abc")
            abc = message("csv", "flush_logs_every_n_steps")
            after = n.bounding_box()
            kept = n.input_value()
            shot(page, "form_number_refused.png")
            n.fill("-5")
            minus = message("csv", "flush_logs_every_n_steps", says="-5")
            n.fill("50")
            fixed = message("csv", "flush_logs_every_n_steps", present=False)  # no message of any kind
            # MLflow: 'required' beside experiment_name; Build refuses; fixing the field clears both
            form.locator(".widget-checkbox", has_text="mlflow").locator("input").check()
            required = message("mlflow", "experiment_name *")
            form.locator("button", has_text="Build configs").click()
            status = form.locator(".autotimm-error", has_text="Not built")
            status.wait_for(timeout=15_000)
            not_built = status.inner_text()
            shot(page, "form_required.png")
            row("mlflow", "experiment_name *").locator("input").fill("exp")
            message("mlflow", "experiment_name *", present=False)
            status.wait_for(state="detached", timeout=15_000)
            # the backend's own rule on tracking_uri, beside tracking_uri
            uri = row("mlflow", "tracking_uri").locator("input")
            uri.fill("file:///tmp/mlruns")
            uri_msg = message("mlflow", "tracking_uri")
            shot(page, "form_tracking_uri.png")
            uri.fill("")
            message("mlflow", "tracking_uri", present=False)
            # W&B: fill, build, see the code; then an edit makes the build stale
            form.locator(".widget-checkbox", has_text="wandb").locator("input").check()
            row("wandb", "project *").locator("input").fill("browser-project")
            row("wandb", "tags").locator("input").fill("resnet, cifar10")
            row("wandb", "tags").locator("input").press("Tab")
            message("wandb", "project *", present=False)
            form.locator("button", has_text="Build configs").click()
            code = form.locator("textarea")
            deadline = time.time() + 30
            while "browser-project" not in code.input_value() and time.time() < deadline: time.sleep(0.2)
            text = code.input_value()
            shot(page, "form_built.png")
            row("wandb", "notes").locator("input").fill("changed")
            form.get_by_text("Changed since the last build").wait_for(timeout=15_000)
            stale_code_hidden = not code.is_visible()
        finally:
            b.close()
    shot.keep()
    assert abc == "⚠ Not a whole number" and kept == "abc" and minus == "⚠ Must be 1 or more, not -5" and fixed == ""
    assert after == before  # the message has its own slot: the input stays where it was
    assert required == "⚠ Required" and "mlflow experiment_name: Required" in not_built
    assert uri_msg.startswith("⚠ Uses MLflow's file store") and "Leave tracking_uri empty" in uri_msg and "params[" not in uri_msg
    assert "LoggerConfig(backend='wandb', params={'project': 'browser-project', 'tags': ['resnet', 'cifar10']" in text
    assert "'save_dir': 'runs/wandb'" in text and "'save_dir': 'runs/mlruns'" in text and stale_code_hidden


TUTORIALS = Path(__file__).parent.parent / "nbs" / "tutorials"
IMAGES = Path(__file__).parent.parent / "nbs" / "images"
# counts, in the page, each new element the front end builds for the live view's text and for its pictures
WATCH = """() => { window.__nodes = {text: 0, pictures: 0, srcs: new Set()};
  setInterval(() => {
    for (const [k, sel] of [["text", ".autotimm-live"], ["pictures", ".autotimm-pictures"]]) {
      const el = document.querySelector(sel);
      if (el && !el.__seen) { el.__seen = true; window.__nodes[k] += 1; }
    }
    document.querySelectorAll(".autotimm-pictures img").forEach(i => window.__nodes.srcs.add(i.src.length + ":" + i.src.slice(-40)));
  }, 25); }"""


def box(page, sel): return page.locator(sel).first.bounding_box()


def readme_image(src, dst):
    "The notebook area of a screenshot, in 256 colours, for the README (kept under 300 KB)."
    from PIL import Image
    dst.parent.mkdir(exist_ok=True)
    Image.open(src).convert("RGB").crop((290, 85, 1245, 790)).quantize(256).save(dst, optimize=True)


def test_live_view_of_the_quickstart_in_jupyterlab(lab_server, tmp_path):
    "The quickstart with 5 epochs: bars with ETA, one table row per epoch, curves and matrix side by side, pictures sent once an epoch."
    import re
    from playwright.sync_api import sync_playwright
    base, token, root = lab_server
    nb = json.loads((TUTORIALS / "quickstart.ipynb").read_text())
    for c in nb["cells"]:
        c["source"] = re.sub(r"max_epochs=\d+", "max_epochs=5", "".join(c["source"]))
    (root / "quickstart.ipynb").write_text(json.dumps(nb))
    SCREENSHOTS.mkdir(exist_ok=True)
    shots = {}
    with sync_playwright() as p:
        b = browser(p)
        try:
            page = b.new_page(viewport={"width": 1280, "height": 1000})
            run_all(page, f"{base}/lab/tree/quickstart.ipynb?token={token}")
            page.evaluate(WATCH)
            view = page.locator(".autotimm-live").first
            view.wait_for(timeout=120_000)
            page.locator(".autotimm-epochs tbody tr").nth(1).wait_for(timeout=120_000)  # mid-training: two epochs done
            no_news = page.locator(".jp-toast-button", has_text="No")  # JupyterLab's "get news?" question
            if no_news.count(): no_news.first.click()
            page.locator("details.autotimm-lightning").first.evaluate("e => e.scrollIntoView()")
            during = view.inner_text()
            page.screenshot(path=str(tmp_path / "live_during.png"))
            shots["during"] = tmp_path / "live_during.png"
            page.locator(".autotimm-done").wait_for(timeout=180_000)
            page.locator("details.autotimm-lightning").first.evaluate("e => e.scrollIntoView()")
            page.screenshot(path=str(tmp_path / "live_after.png"))
            shots["after"] = tmp_path / "live_after.png"
            text = page.locator(".autotimm-live").first.inner_text()
            rows = page.locator(".autotimm-epochs tbody tr").count()
            bars = page.locator(".autotimm-live progress").count()
            curves, cm = box(page, ".autotimm-curves img"), box(page, ".autotimm-cm img")
            nodes = page.evaluate("() => ({text: window.__nodes.text, pictures: window.__nodes.pictures, srcs: window.__nodes.srcs.size})")
            folded = page.locator("details.autotimm-lightning").first.inner_text()
            output = page.locator(".jp-OutputArea-output").all_inner_texts()
        finally:
            b.close()
    for name, path in shots.items(): shutil.copy(path, SCREENSHOTS / f"live_{name}.png")
    readme_image(shots["during"], SCREENSHOTS / "live_view_readme.png")  # copy it to nbs/images/ by hand to refresh the README
    # the bars: epochs, training, validation, each with elapsed<ETA and a speed
    assert bars == 3 and re.search(r"Epoch \d/5", during) and re.search(r"\[\d\d:\d\d<\d\d:\d\d, [\d.]+ (batch/s|s/batch)\]", during)
    assert "train" in during and "validate" in during
    # a row per epoch, counted from 1, the best marked by the checkpoint's key, and the closing line
    assert rows == 5 and "★" in text and "best epoch by val/accuracy (max)" in text
    assert re.search(r"Trained 5 epochs in \d\d:\d\d · best epoch \d: val/accuracy", text) and "best checkpoint" in text
    # curves and matrix side by side inside the output, nothing wrapped
    assert abs(curves["y"] - cm["y"]) < 40 and cm["x"] >= curves["x"] + curves["width"] and cm["x"] + cm["width"] <= 1280
    # the pictures were built once an epoch (plus the empty placeholder), the text far more often
    assert nodes["pictures"] <= 5 + 1 and nodes["srcs"] <= 2 * 5 and nodes["text"] > nodes["pictures"]
    # Lightning's start-up lines are in the folded line, not around the view
    assert "Lightning:" in folded and not any("Trainable params" in o for o in output)


def test_viewer_keeps_a_static_picture_in_the_saved_notebook(lab_server, tmp_path):
    "While the kernel runs the widget shows and its static copy is hidden; saved and reopened later, the copy shows."
    import urllib.request
    from playwright.sync_api import sync_playwright
    base, token, root = lab_server
    (root / "viewer.ipynb").write_text(notebook(
        "from autotimm import AutoTrainer, ConfusionMatrixViewer, ImageClassifier, ImageDataModule, LoggerConfig, LoggingConfig\n"
        "model = ImageClassifier(backbone='test_resnet', num_classes=10, pretrained=False, logging_config=LoggingConfig(log_confusion_matrix=True))\n"
        "trainer = AutoTrainer(max_epochs=2, logger=[LoggerConfig('csv', {'save_dir': 'runs'})], live=False, enable_progress_bar=False,\n"
        "                      enable_model_summary=False, limit_train_batches=3, limit_val_batches=2)\n"
        "trainer.fit(model, datamodule=ImageDataModule(dataset_name='digits', image_size=32, batch_size=32))",
        "ConfusionMatrixViewer(trainer.logger.log_dir)"))
    url = f"{base}/lab/tree/viewer.ipynb?token={token}"
    static = ".jp-OutputArea-output.jp-RenderedImage img"
    with sync_playwright() as p:
        b = browser(p)
        try:
            page = b.new_page(viewport={"width": 1280, "height": 1000})
            run_all(page, url)
            page.locator(".widget-image").first.wait_for(timeout=120_000)
            page.wait_for_timeout(500)
            live_img = page.locator(".widget-image").first.bounding_box()
            slider = page.locator(".widget-slider").first.bounding_box()
            hidden_while_live = not page.locator(static).first.is_visible()
            page.screenshot(path=str(tmp_path / "viewer_live.png"))
            page.keyboard.press("Control+s")
            deadline = time.time() + 30
            while time.time() < deadline:
                outs = [o for c in json.loads((root / "viewer.ipynb").read_text())["cells"] for o in c.get("outputs", [])]
                if any("image/png" in o.get("data", {}) for o in outs): break
                time.sleep(0.3)
            for s in json.loads(urllib.request.urlopen(f"{base}/api/sessions?token={token}").read()):  # the kernel goes away
                urllib.request.urlopen(urllib.request.Request(f"{base}/api/sessions/{s['id']}?token={token}", method="DELETE"))
            page.close()
            page = b.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url)  # later: a new kernel that has not run anything, no widget models
            page.locator(static).first.wait_for(state="visible", timeout=60_000)
            natural = page.locator(static).first.evaluate("i => i.naturalWidth")
            page.screenshot(path=str(tmp_path / "viewer_reopened.png"))
        finally:
            b.close()
    for name in ("viewer_live", "viewer_reopened"): shutil.copy(tmp_path / f"{name}.png", SCREENSHOTS / f"{name}.png")
    assert any("image/png" in o.get("data", {}) for o in outs)
    assert hidden_while_live and slider["y"] < live_img["y"] and live_img["y"] + live_img["height"] < 1000  # slider and matrix together
    import base64
    from autotimm.plots import png_size
    saved = base64.b64decode(next(o["data"]["image/png"] for o in outs if "image/png" in o.get("data", {})))
    assert natural == png_size(saved)[0] > 300  # the saved matrix, shown at its own size
