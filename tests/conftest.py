"""Shared fixtures: a clean working folder per test, W&B offline, a real MLflow server, small image data. The plain
helpers the tests share are in helpers.py, the backends' readers in readers.py."""
import os
import sys

import pytest

from helpers import free_port, make_image_folders, start_mlflow_server, stop_mlflow_server

os.environ["WANDB_MODE"] = "offline"  # no network: W&B writes offline runs
os.environ["WANDB_SILENT"] = "true"
os.environ.pop("MLFLOW_TRACKING_URI", None)


@pytest.fixture(autouse=True)
def workdir(tmp_path, monkeypatch):
    "Run each test in its own empty folder; finish any W&B run it left open."
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # mlflow.set_tracking_uri sets it process-wide
    monkeypatch.delenv("AUTOTIMM_RUN_NAME", raising=False)  # a manager a test leaves open names its run here
    yield tmp_path
    wandb = sys.modules.get("wandb")  # None while a test hides it
    if wandb is not None and wandb.run is not None: wandb.finish()


class ServerURI(str):
    "A server's URI, with `.root`, the folder of its store."


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    "A real `mlflow server` on 127.0.0.1 with a sqlite store; stopped after the module's tests."
    root = tmp_path_factory.mktemp("mlflow_server")
    port = free_port()
    proc = start_mlflow_server(root, port)
    uri = ServerURI(f"http://127.0.0.1:{port}")
    uri.root = root  # where the server keeps its store and artifacts
    yield uri
    stop_mlflow_server(proc)


@pytest.fixture
def image_folders(workdir):
    return make_image_folders(workdir / "data")
