"""One short run with all four real backends; every key, hyperparameter and image read back from each; no warning
from Lightning's own internals at fit and test."""
import math
import subprocess
import sys
import threading
from pathlib import Path

import matplotlib
import pytest
from mlflow.tracking import MlflowClient
from pytorch_lightning import Callback

from autotimm import (AutoTrainer, ImageClassifier, ImageDataModule, LoggerConfig, LoggerManager, LoggingConfig,
                      MetricConfig)
from autotimm.backends import mlflow_local_uri
from readers import WandbRun, csv_scalars, mlflow_artifacts, mlflow_scalars, tensorboard_run, tensorboard_scalars

EPOCHS = 2
STEP_KEYS = ["train/loss", "train/lr", "train/grad_norm", "train/weight_norm"]
EPOCH_KEYS = ["train/accuracy", "val/loss", "val/accuracy", "val/f1"]
TEST_KEYS = ["test/loss", "test/accuracy"]
ALL_KEYS = STEP_KEYS + EPOCH_KEYS + TEST_KEYS


class Threads(Callback):
    "The names of the threads alive at each validation end (the confusion matrix handed over by then)."
    def __init__(self): self.names = set()
    def on_validation_end(self, trainer, pl_module): self.names |= {t.name for t in threading.enumerate()}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    "Train 2 epochs of test_resnet on digits (20 batches an epoch, fewer than log_every_n_steps=50), then test."
    import matplotlib.pyplot as plt
    root = tmp_path_factory.mktemp("e2e")
    backend_before = matplotlib.get_backend()
    metrics = [MetricConfig(name="accuracy", backend="torchmetrics", metric_class="Accuracy",
                            params={"task": "multiclass"}, stages=["train", "val", "test"], prog_bar=True),
               MetricConfig(name="f1", metric_class="F1Score", params={"task": "multiclass", "average": "macro"}, stages=["val"])]
    model = ImageClassifier(backbone="test_resnet", num_classes=10, metrics=metrics, pretrained=False, lr=3e-3,
                            logging_config=LoggingConfig(log_learning_rate=True, log_gradient_norm=True,
                                                         log_weight_norm=True, log_confusion_matrix=True))
    data = ImageDataModule(dataset_name="digits", image_size=32, batch_size=64)
    manager = LoggerManager(configs=[
        LoggerConfig(backend="tensorboard", params={"save_dir": str(root / "tb"), "name": "run"}),
        LoggerConfig(backend="csv", params={"save_dir": str(root / "csv"), "name": "run"}),
        LoggerConfig(backend="mlflow", params={"experiment_name": "e2e", "save_dir": str(root / "mlruns")}),
        LoggerConfig(backend="wandb", params={"project": "e2e", "save_dir": str(root / "wandb"), "offline": True}),
    ])
    threads = Threads()
    trainer = AutoTrainer(max_epochs=EPOCHS, logger=manager, checkpoint_monitor="val/accuracy", callbacks=[threads],
                          enable_progress_bar=False, enable_model_summary=False)
    assert trainer.log_every_n_steps == 50
    trainer.fit(model, datamodule=data)
    trainer.test(model, datamodule=data, verbose=False)
    manager.close()
    return dict(root=root, manager=manager, trainer=trainer, model=model, backend_before=backend_before,
                open_figures=plt.get_fignums(), threads=threads.names)


@pytest.fixture(scope="module")
def backends(run):
    "What each backend holds: `{backend: {key: [(step, value)]}}`."
    m = run["manager"]
    tb, csv, mlf = (m.get_logger_by_backend(b) for b in ("tensorboard", "csv", "mlflow"))
    client = MlflowClient(mlflow_local_uri(run["root"] / "mlruns"))
    (wb,) = WandbRun.find(run["root"] / "wandb")
    return {"tensorboard": tensorboard_scalars(tb.log_dir), "csv": csv_scalars(csv.log_dir),
            "mlflow": mlflow_scalars(client, mlf.run_id), "wandb": wb.scalars()}


@pytest.mark.parametrize("backend", ["tensorboard", "csv", "mlflow", "wandb"])
def test_every_key_reaches_every_backend(backends, backend):
    got = backends[backend]
    missing = [k for k in ALL_KEYS if k not in got]
    assert not missing, f"{backend} lacks {missing}; has {sorted(got)}"
    # the run has 20 steps an epoch, fewer than log_every_n_steps=50: step keys still land once an epoch
    for k in STEP_KEYS: assert len(got[k]) >= EPOCHS, (backend, k, got[k])
    for k in EPOCH_KEYS: assert len(got[k]) == EPOCHS, (backend, k, got[k])
    assert all(math.isfinite(v) for k in ALL_KEYS for _, v in got[k])


def test_backends_hold_the_same_values(backends):
    ref = backends["csv"]
    for name in ("tensorboard", "mlflow", "wandb"):
        for k in ALL_KEYS:
            a, b = [v for _, v in ref[k]], [v for _, v in backends[name][k]]
            assert a == pytest.approx(b, rel=1e-5), (name, k, a, b)
    assert [s for s, _ in ref["val/loss"]] == [s for s, _ in backends["tensorboard"]["val/loss"]]


def test_values_are_sane(backends, run):
    got = backends["csv"]
    assert all(0 <= v <= 1 for _, v in got["val/accuracy"])
    assert got["train/lr"][0][1] == pytest.approx(3e-3)
    assert all(v > 0 for _, v in got["train/grad_norm"]) and all(v > 1 for _, v in got["train/weight_norm"])
    assert got["val/accuracy"][-1][1] > 0.3  # it learns


def test_confusion_matrix_in_every_backend(run):
    m, root = run["manager"], run["root"]
    # TensorBoard: an image summary per validation epoch (not the sanity check)
    acc = tensorboard_run(m.get_logger_by_backend("tensorboard").log_dir)
    assert "val/confusion_matrix" in acc.Tags()["images"]
    imgs = acc.Images("val/confusion_matrix")
    assert len(imgs) == EPOCHS and imgs[0].width > 300 and imgs[0].encoded_image_string[:4] == b"\x89PNG"
    # CSV: one PNG per epoch next to metrics.csv
    csv_dir = Path(m.get_logger_by_backend("csv").log_dir)
    pngs = sorted(csv_dir.glob("val_confusion_matrix_epoch_*.png"))
    assert [p.name for p in pngs] == [f"val_confusion_matrix_epoch_{e:03d}.png" for e in range(EPOCHS)]
    assert (csv_dir / "metrics.csv").exists() and pngs[0].read_bytes()[:4] == b"\x89PNG"
    # MLflow: image artifacts in the run
    mlf = m.get_logger_by_backend("mlflow")
    arts = mlflow_artifacts(MlflowClient(mlflow_local_uri(root / "mlruns")), mlf.run_id)
    assert sorted(a for a in arts if a.startswith("val_confusion_matrix/")) == \
        sorted(f"val_confusion_matrix/epoch_{e:03d}.{ext}" for e in range(EPOCHS) for ext in ("json", "png"))
    # W&B: image media files in the offline run
    (wb,) = WandbRun.find(root / "wandb")
    files = wb.images("val/confusion_matrix")
    assert len(files) == EPOCHS and all(f.exists() and f.read_bytes()[:4] == b"\x89PNG" for f in files)


def test_on_the_cpu_the_matrix_is_drawn_on_the_training_thread(run):
    "torch's threads use every core: a worker thread beside them costs training more than drawing at the epoch end."
    assert "MainThread" in run["threads"] and not any(n.startswith("autotimm-confusion-matrix") for n in run["threads"])


def test_hyperparameters_in_every_backend(run):
    m, root = run["manager"], run["root"]
    expected = {"backbone": "test_resnet", "num_classes": 10, "lr": 3e-3, "optimizer": "adamw",
                "batch_size": 64, "image_size": 32, "max_epochs": EPOCHS}
    import yaml
    for b in ("tensorboard", "csv"):
        hp = yaml.safe_load((Path(m.get_logger_by_backend(b).log_dir) / "hparams.yaml").read_text())
        assert {k: hp[k] for k in expected} == expected, (b, hp)
    # TensorBoard's HParams plugin data in the event file
    acc = tensorboard_run(m.get_logger_by_backend("tensorboard").log_dir)
    from tensorboard.plugins.hparams import plugin_data_pb2
    content = acc.SummaryMetadata("_hparams_/session_start_info").plugin_data.content
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    assert info.hparams["backbone"].string_value == "test_resnet"
    assert info.hparams["batch_size"].number_value == 64
    params = MlflowClient(mlflow_local_uri(root / "mlruns")).get_run(m.get_logger_by_backend("mlflow").run_id).data.params
    assert {k: params[k] for k in expected} == {k: str(v) for k, v in expected.items()}
    (wb,) = WandbRun.find(root / "wandb")
    assert {k: wb.config[k] for k in expected} == expected


def test_checkpoint_name_shows_the_real_value(run, backends):
    ckpt = run["trainer"].checkpoint_callback
    name = Path(ckpt.best_model_path).name
    assert name.startswith("epoch=") and "val_accuracy=" in name and Path(ckpt.best_model_path).exists()
    value = float(name.split("val_accuracy=")[1].removesuffix(".ckpt"))
    assert value == pytest.approx(max(v for _, v in backends["csv"]["val/accuracy"]), abs=1e-4)
    assert ckpt.mode == "max"


def test_no_global_matplotlib_side_effects(run):
    assert matplotlib.get_backend() == run["backend_before"]
    assert run["open_figures"] == []


def test_mlflow_run_is_finished_in_the_local_sqlite_store(run):
    root = run["root"]
    assert (root / "mlruns" / "mlflow.db").exists()
    info = MlflowClient(mlflow_local_uri(root / "mlruns")).get_run(run["manager"].get_logger_by_backend("mlflow").run_id).info
    assert info.status == "FINISHED"


_WARNS = """
import warnings, pytorch_lightning as pl
from autotimm import AutoTrainer, ImageClassifier, ImageDataModule, LoggerConfig
kw = dict(max_epochs=1, limit_train_batches=2, limit_val_batches=1, limit_test_batches=1, enable_progress_bar=False,
          enable_model_summary=False)
trainer = AutoTrainer(logger=[LoggerConfig("csv", {"save_dir": "logs"})], **kw) if {autotimm} else pl.Trainer(logger=False, **kw)
model = ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False)
data = ImageDataModule(dataset_name="digits", image_size=16, batch_size=16)
trainer.fit(model, datamodule=data)
trainer.test(model, datamodule=data, verbose=False)
warnings.warn("a user's own deprecation", DeprecationWarning)  # shown as in any script: autotimm hides only Lightning's
"""


def test_lightning_internal_deprecation_is_not_shown_at_fit_and_test(workdir):
    "Lightning's use of a torch API torch deprecates warns (in red, in a notebook) at every fit and test; AutoTrainer hides it."
    def stderr(autotimm):
        r = subprocess.run([sys.executable, "-W", "default", "-c", _WARNS.replace("{autotimm}", str(autotimm))],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        return r.stderr
    bare = stderr(False)
    if "LeafSpec" not in bare: pytest.skip("this Lightning and torch no longer warn about LeafSpec")
    ours = stderr(True)
    assert "LeafSpec" not in ours
    assert "a user's own deprecation" in ours and "a user's own deprecation" in bare
