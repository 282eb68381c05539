"""Shared fixtures: a clean working folder per test, W&B offline, a real MLflow server, small image data."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerURI(str):
    "A server's URI, with `.root`, the folder of its store."


def start_mlflow_server(root, port):
    "Start a real `mlflow server` on 127.0.0.1:`port` with its sqlite store and artifacts in `root`; wait until it answers."
    import urllib.request
    root = Path(root)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    mlflow = Path(sys.executable).parent / "mlflow"
    proc = subprocess.Popen(
        [str(mlflow), "server", "--backend-store-uri", f"sqlite:///{root}/mlflow.db",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=open(root / "server.log", "ab"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.time() + 90
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2); return proc
        except Exception:
            if proc.poll() is not None or time.time() > deadline:
                stop_mlflow_server(proc, signal=9)
                raise RuntimeError("mlflow server did not start:\n" + (root / "server.log").read_text()[-3000:])
            time.sleep(0.5)


def stop_mlflow_server(proc, signal=15):
    "Stop the server's whole process group (`signal=9`: as if it crashed)."
    try: os.killpg(proc.pid, signal)
    except ProcessLookupError: pass
    try: proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9); proc.wait()


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


def tiny_classifier():
    "test_resnet from scratch on 10 classes, with accuracy, the gradient norm and the confusion matrix logged."
    from autotimm import ImageClassifier, LoggingConfig, MetricConfig
    return ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False,
                           metrics=[MetricConfig(name="accuracy", metric_class="Accuracy", params={"task": "multiclass"})],
                           logging_config=LoggingConfig(log_gradient_norm=True, log_confusion_matrix=True))


def digits():
    "The built-in digits at 32 px, batches of 32."
    from autotimm import ImageDataModule
    return ImageDataModule(dataset_name="digits", image_size=32, batch_size=32)


def make_image_folders(root, classes=("cat", "dog", "fox"), n=12, splits=("train", "val", "test"), size=20, seed=0):
    "Write PNG image folders `root/<split>/<class>/<i>.png`, each class with its own colour."
    from PIL import Image
    rng = np.random.default_rng(seed)
    for split in splits:
        for c, name in enumerate(classes):
            d = Path(root) / split / name
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
                img[..., c % 3] += 150
                Image.fromarray(img).save(d / f"{i}.png")
    return Path(root)


@pytest.fixture
def image_folders(workdir):
    return make_image_folders(workdir / "data")
