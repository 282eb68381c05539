"""One real-browser test: JupyterLab on 127.0.0.1, headless Chromium, the logger form rendered, filled, clicked; the code shows."""
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

from conftest import free_port

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).parent / "screenshots"


def ensure_chromium():
    "Debian's chromium, installed by the test when missing (CI runs as root with apt)."
    if not Path(CHROMIUM).exists():
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, capture_output=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    return CHROMIUM


@pytest.fixture
def lab(tmp_path):
    "JupyterLab serving a copy of a notebook that shows the form; stopped after the test."
    root = tmp_path / "lab"
    root.mkdir()
    cells = [{"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {}, "outputs": [],
              "source": "from autotimm import LoggerForm\nform = LoggerForm()\nform"}]
    nb = {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    (root / "form.ipynb").write_text(json.dumps(nb))
    env = {**os.environ}
    for name in ("CONFIG", "RUNTIME"):  # per-test Jupyter dirs
        (tmp_path / name.lower()).mkdir()
        env[f"JUPYTER_{name}_DIR"] = str(tmp_path / name.lower())
    env["JUPYTERLAB_SETTINGS_DIR"] = str(tmp_path / "settings")
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(tmp_path / "workspaces")
    port, token = free_port(), secrets.token_hex(16)
    jupyter = Path(sys.executable).parent / "jupyter"
    log = open(tmp_path / "lab.log", "wb")
    proc = subprocess.Popen([str(jupyter), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                             f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}",
                             "--ServerApp.open_browser=False"] + (["--allow-root"] if os.geteuid() == 0 else []) + [ "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2); break
        except Exception:
            if proc.poll() is not None or time.time() > deadline:
                if proc.poll() is None: os.killpg(proc.pid, 9)
                raise RuntimeError((tmp_path / "lab.log").read_text()[-3000:])
            time.sleep(0.3)
    yield f"{base}/lab/tree/form.ipynb?token={token}"
    os.killpg(proc.pid, 15)
    try: proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9); proc.wait()


def test_form_in_jupyterlab_in_chromium(lab, tmp_path):
    from playwright.sync_api import sync_playwright
    exe = ensure_chromium()
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.goto(lab)
            # the kernel is ready when its name shows in the toolbar (the idle dot shows earlier)
            page.locator(".jp-Toolbar-kernelName").filter(has_text="Python 3").wait_for(timeout=60_000)
            page.locator(".jp-Notebook").click()
            page.locator(".lm-MenuBar-item", has_text="Run").click()
            page.locator(".lm-Menu-item:visible", has_text="Run All Cells").first.click()
            form = page.locator(".widget-vbox", has_text="autotimm loggers").first
            form.wait_for(timeout=60_000)
            # enable W&B, fill the project and tags, build
            form.locator(".widget-checkbox", has_text="wandb").locator("input").check()
            wandb = form.locator(".widget-vbox").filter(has=page.locator(".widget-checkbox", has_text="wandb")).last
            row = lambda label: wandb.locator(".widget-hbox").filter(has=page.get_by_text(label, exact=True))
            row("project *").locator("input").fill("browser-project")
            row("tags").locator("input").fill("resnet, cifar10")
            row("tags").locator("input").press("Tab")
            form.locator("button", has_text="Build configs").click()
            code = form.locator("textarea")
            deadline = time.time() + 30
            while "browser-project" not in code.input_value() and time.time() < deadline: time.sleep(0.2)
            text = code.input_value()
            page.screenshot(path=str(SCREENSHOTS / "logger_form.png"), full_page=True)
            shutil.copy(SCREENSHOTS / "logger_form.png", tmp_path / "logger_form.png")
        finally:
            browser.close()
    assert "LoggerConfig(backend='wandb', params={'project': 'browser-project', 'tags': ['resnet', 'cifar10']" in text
    assert form is not None and (SCREENSHOTS / "logger_form.png").stat().st_size > 10_000
