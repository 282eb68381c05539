"""Plain helpers the tests share: a free port and a real MLflow server, the tiny model and data, image folders, local
logger configs for every backend, a started manager and its end, a Ctrl-C callback, pixels, mounts, a full disk and
file searches. Fixtures live in conftest.py, the backends' readers in readers.py. Light to import: torch, Lightning
and autotimm load inside the helpers that need them."""
import io
import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest


def free_port()->int:
    "A TCP port on 127.0.0.1 that nothing listens on now."
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def classifier(**kw):
    "test_resnet from scratch on 10 classes with accuracy logged; `kw`: more `ImageClassifier` arguments."
    from autotimm import ImageClassifier, MetricConfig
    return ImageClassifier(**{"backbone": "test_resnet", "num_classes": 10, "pretrained": False,
                              "metrics": [MetricConfig(name="accuracy", metric_class="Accuracy", params={"task": "multiclass"})],
                              **kw})


def tiny_classifier():
    "test_resnet from scratch on 10 classes, with accuracy, the gradient norm and the confusion matrix logged."
    from autotimm import LoggingConfig
    return classifier(logging_config=LoggingConfig(log_gradient_norm=True, log_confusion_matrix=True))


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


LOCAL = {  # each backend writing on this machine only, offline, in a folder of its own under `{root}`
    "tensorboard": {"save_dir": "{root}/tb", "name": "{name}"},
    "csv": {"save_dir": "{root}/csv", "name": "{name}"},
    "mlflow": {"experiment_name": "{name}", "save_dir": "{root}/mlruns"},
    "wandb": {"project": "{name}", "save_dir": "{root}/wandb", "offline": True},
    "comet": {"project": "{name}", "save_dir": "{root}/comet", "online": False},
}
FOUR = ("tensorboard", "csv", "mlflow", "wandb")  # the backends most tests fit with; `list_backends()` for every one


def local_params(backend:str, root=".", name:str="run")->dict:
    "`backend`'s params from `LOCAL`, in `root`, its run, experiment or project called `name`."
    return {k: v.format(root=root, name=name) if isinstance(v, str) else v for k, v in LOCAL[backend].items()}


def local_configs(root=".", name:str="run", backends=FOUR)->list:
    "A `LoggerConfig` per backend in `backends` (in that order), each writing under `root` (`LOCAL`)."
    from autotimm import LoggerConfig
    return [LoggerConfig(b, local_params(b, root, name)) for b in backends]


def started(configs:list, **kw):
    "A `LoggerManager` over `configs` whose runs have started (what `fit` does first); `kw`: more manager arguments."
    from autotimm import LoggerManager
    from autotimm.delivery import delivery_of
    m = LoggerManager(configs, **kw)
    for lg in m.loggers: delivery_of(lg).start()
    return m


def finish(m):
    "End the manager's runs as a stage's end does: Lightning's `finalize`, then the manager's `close`."
    for lg in m.loggers: lg.finalize("success")
    m.close()


def ctrl_c(epoch:int=1, batch:int=0):
    "A callback that presses Ctrl-C (raises `KeyboardInterrupt`) as training batch `batch` of `epoch` starts (both from 0)."
    from pytorch_lightning import Callback
    class CtrlC(Callback):
        def on_train_batch_start(self, trainer, pl_module, _, batch_idx):
            if trainer.current_epoch == epoch and batch_idx == batch: raise KeyboardInterrupt
    return CtrlC()


def pixels(png:bytes)->np.ndarray:
    "The RGB pixels of a PNG."
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


@contextmanager
def mounted(target, *options):
    "`mount <options> <target>` (made by the test, on its own folder), unmounted when the block ends; a skip where not allowed."
    if os.geteuid() != 0: pytest.skip("mounting a tmpfs or a read-only bind mount needs root (CI runs as root)")
    if shutil.which("mount") is None: pytest.skip("the mount command is not available")
    Path(target).mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", *options, str(target)], capture_output=True, text=True)
    if done.returncode: pytest.skip(f"mount {' '.join(options)} is not allowed here: {done.stderr.strip()}")
    try: yield Path(target)
    finally: subprocess.run(["umount", "-l", str(target)], capture_output=True)


def fill_disk(folder)->Path:
    "Write zeros into `folder/filler` until its disk refuses more; that file (unlink it to free the disk)."
    filler = Path(folder) / "filler"
    with open(filler, "wb") as f:
        try:
            while True: f.write(b"\0" * 65536); f.flush()
        except OSError: pass
    return filler


def disk_fills_mid_run(manager, disk, before=None)->tuple:
    "10 `train/loss` points to every logger, `before()`, `disk` filled, 10 more, the stage ended: (filler, report)."
    import warnings
    for step in range(10):
        for lg in manager.loggers: lg.log_metrics({"train/loss": float(step)}, step)
    if before is not None: before()
    filler = fill_disk(disk)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for step in range(10, 20):
            for lg in manager.loggers: lg.log_metrics({"train/loss": float(step)}, step)
        finish(manager)
        return filler, manager.report()


def files_containing(root, needle:str)->list:
    "Every file under `root` whose bytes contain `needle`."
    hits = []
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            try:
                if needle.encode() in p.read_bytes(): hits.append(str(p))
            except OSError: pass
    return hits
