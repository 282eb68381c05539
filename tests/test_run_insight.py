"""System metrics, the run manifest, one run identity, checkpoint artifacts, and one run read back from all four backends."""
import json
import threading
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from autotimm import (AutoTrainer, ImageClassifier, ImageDataModule, LoggerConfig, LoggerManager, LoggingConfig,
                      MetricConfig, compare_runs, load_run)
from autotimm.backends import mlflow_local_uri
from autotimm.backends.wandb import _wandb_records
from readers import mlflow_artifacts, tensorboard_run

EPOCHS = 2


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("insight")
    model = ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False, lr=3e-3,
                            metrics=[MetricConfig(name="accuracy", metric_class="Accuracy", params={"task": "multiclass"})],
                            logging_config=LoggingConfig(log_gradient_norm=True, log_weight_norm=True, log_confusion_matrix=True,
                                                         log_system_metrics=True, system_metrics_interval=0.2))
    manager = LoggerManager(configs=[
        LoggerConfig("tensorboard", {"save_dir": str(root / "tb")}),
        LoggerConfig("csv", {"save_dir": str(root / "csv")}),
        LoggerConfig("mlflow", {"experiment_name": "insight", "save_dir": str(root / "mlruns"), "log_model": True}),
        LoggerConfig("wandb", {"project": "insight", "save_dir": str(root / "wandb"), "offline": True, "log_model": True}),
    ])
    trainer = AutoTrainer(max_epochs=EPOCHS, logger=manager, checkpoint_monitor="val/accuracy", enable_progress_bar=False,
                          default_root_dir=str(root))
    trainer.fit(model, datamodule=ImageDataModule(dataset_name="digits", image_size=32, batch_size=64))
    threads_after_fit = [t.name for t in threading.enumerate()]
    manager.close()
    tb, csv, mlf, wb = manager.loggers
    wandb_dir = next((root / "wandb" / "wandb").glob("offline-run-*"))
    runs = {"csv": load_run(csv.log_dir), "tensorboard": load_run(tb.log_dir),
            "mlflow": load_run(mlflow_local_uri(root / "mlruns"), run=mlf.run_id), "wandb": load_run(wandb_dir)}
    return dict(root=root, manager=manager, trainer=trainer, runs=runs, wandb_dir=wandb_dir, threads=threads_after_fit)


def test_one_run_read_back_from_every_backend_holds_one_truth(run):
    runs = run["runs"]
    ref = runs["csv"]
    keys = set(ref.metrics["key"])
    assert {"train/loss", "val/loss", "val/accuracy", "train/grad_norm", "system/cpu_percent"} <= keys
    for name, r in runs.items():
        assert set(r.metrics["key"]) == keys, (name, keys ^ set(r.metrics["key"]))
        for k in keys:
            a, b = ref.scalars(k), r.scalars(k)
            assert [s for s, _ in a] == [s for s, _ in b], (name, k)
            assert [v for _, v in a] == pytest.approx([v for _, v in b], rel=1e-5, abs=1e-6), (name, k)
        assert r.metrics[r.metrics.key == "val/loss"]["epoch"].tolist() == list(range(EPOCHS)), name
        assert sorted(r.confusion_matrices) == list(range(EPOCHS)), name
        assert r.confusion_matrices[1]["counts"] == ref.confusion_matrices[1]["counts"], name
        assert r.hparams["backbone"] == "test_resnet" and r.hparams["model/param_count"] == ref.hparams["model/param_count"], name
        assert r.hparams["batch_size"] == 64 and r.hparams["lr"] == pytest.approx(3e-3), name
    df, fig = compare_runs(list(runs.values()), keys=["val/loss", "val/accuracy"])
    assert df.groupby("run").size().tolist() == [2 * EPOCHS] * 4 and len(fig.axes) == 2


def test_one_run_identity(run):
    tb, csv, mlf, wb = run["manager"].loggers
    name = run["manager"].run_name
    assert name == "version_0" == Path(tb.log_dir).name == Path(csv.log_dir).name
    assert MlflowClient(mlflow_local_uri(run["root"] / "mlruns")).get_run(mlf.run_id).info.run_name == name
    assert run["runs"]["wandb"].name == name


def test_manifest_in_every_backend(run):
    tb, csv, mlf, wb = run["manager"].loggers
    files = {"tensorboard": Path(tb.log_dir) / "run_manifest.json", "csv": Path(csv.log_dir) / "run_manifest.json",
             "wandb": run["wandb_dir"] / "files" / "run" / "manifest.json"}
    client = MlflowClient(mlflow_local_uri(run["root"] / "mlruns"))
    assert "run/manifest.json" in mlflow_artifacts(client, mlf.run_id)
    files["mlflow"] = Path(client.download_artifacts(mlf.run_id, "run/manifest.json", str(run["root"])))
    for backend, f in files.items():
        m = json.loads(f.read_text())
        assert m["model"]["architecture"] == "test_resnet" and m["model"]["param_count"] > 1000, backend
        assert m["training"]["max_epochs"] == EPOCHS and m["training"]["batch_size"] == 64 and m["training"]["precision"], backend
        assert m["data"]["class_names"] == [str(i) for i in range(10)] and m["data"]["train_size"] == 1252, backend
        assert m["environment"]["torch"] and m["environment"]["timm"] and m["environment"]["pytorch-lightning"], backend
        assert m["backends"]["mlflow"]["run_id"] == mlf.run_id and m["backends"]["csv"]["version"] == "version_0", backend
        assert m["run"]["name"] == "version_0"
    for name, r in run["runs"].items():  # and as hyperparameters
        assert r.hparams["data/val_size"] == 266 and r.hparams["environment/python"], name


def test_tensorboard_hparams_tab_declares_the_val_metrics(run):
    acc = tensorboard_run(run["manager"].loggers[0].log_dir)
    from tensorboard.plugins.hparams import plugin_data_pb2
    exp = plugin_data_pb2.HParamsPluginData.FromString(acc.SummaryMetadata("_hparams_/experiment").plugin_data.content).experiment
    assert sorted(m.name.tag for m in exp.metric_infos) == ["val/accuracy", "val/loss"]
    assert {h.name for h in exp.hparam_infos} >= {"backbone", "lr", "batch_size", "model/param_count"}


def test_system_metrics(run):
    keys = set(run["runs"]["csv"].metrics["key"])
    assert {"system/cpu_percent", "system/ram_mb", "system/ram_percent", "system/samples_per_s", "system/steps_per_s",
            "system/epoch_time_s"} <= keys
    assert not [k for k in keys if k.startswith("system/gpu")]  # CPU only here: absent, not an error
    assert "autotimm-system-metrics" not in run["threads"]  # the sampler stopped with fit
    ram = run["runs"]["csv"].scalars("system/ram_mb")
    assert all(100 < v < 20000 for _, v in ram)
    assert len(run["runs"]["csv"].scalars("system/epoch_time_s")) == EPOCHS


def test_checkpoints_are_artifacts_in_mlflow_and_wandb(run):
    tb, csv, mlf, wb = run["manager"].loggers
    arts = mlflow_artifacts(MlflowClient(mlflow_local_uri(run["root"] / "mlruns")), mlf.run_id)
    assert any(a.endswith(".ckpt") for a in arts), arts
    records = [r for r, _ in _wandb_records(next(run["wandb_dir"].glob("*.wandb"))) if r.WhichOneof("record_type") == "artifact"]
    assert records and records[0].artifact.type == "model"
    assert any(e.path == "model.ckpt" for e in records[0].artifact.manifest.contents)
