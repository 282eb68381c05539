"""Copying a finished run into another backend, read back and compared with the source."""
import pytest
import torch

from autotimm import AutoTrainer, LoggerConfig, LoggerManager, LoggingConfig, load_run
from autotimm.backends import mlflow_local_uri
from autotimm.cli import main
from autotimm.runs import copy_run
from helpers import classifier, digits, pixels


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    "A short run with every kind of record, logged to TensorBoard and MLflow."
    root = tmp_path_factory.mktemp("copy")
    torch.manual_seed(0)
    model = classifier(logging_config=LoggingConfig(log_confusion_matrix=True, log_per_class_metrics=True,
                                                    log_misclassified=True, misclassified_count=4))
    manager = LoggerManager([LoggerConfig("tensorboard", {"save_dir": str(root / "tb")}),
                             LoggerConfig("mlflow", {"experiment_name": "source", "save_dir": str(root / "mlruns")})],
                            run_name="source")
    trainer = AutoTrainer(max_epochs=2, logger=manager, limit_train_batches=3, limit_val_batches=2, enable_progress_bar=False,
                          enable_checkpointing=False, default_root_dir=str(root))
    trainer.fit(model, datamodule=digits())
    (root / "notes.txt").write_text("copied too")
    model_log = __import__("autotimm.media", fromlist=["log_artifact"]).log_artifact(manager, root / "notes.txt")
    assert set(model_log) == {"tensorboard", "mlflow"}
    manager.close()
    tb, mlf = manager.loggers
    return dict(root=root, tb=load_run(tb.log_dir), mlflow=load_run(mlflow_local_uri(root / "mlruns"), run=mlf.run_id),
                mlflow_id=mlf.run_id)


def same_run(copy, src):
    "The copy holds what the source holds: metrics at their steps and epochs, hyperparameters, manifest, matrices, media."
    keys = set(src.metrics["key"])
    assert keys >= {"train/loss", "val/loss", "val/accuracy"} and set(copy.metrics["key"]) == keys
    for k in keys:
        a, b = src.metrics[src.metrics.key == k], copy.metrics[copy.metrics.key == k]
        assert b["step"].tolist() == a["step"].tolist(), k
        assert b["value"].tolist() == pytest.approx(a["value"].tolist(), rel=1e-6), k
    assert copy.metrics[copy.metrics.key == "val/loss"]["epoch"].tolist() == [0, 1]
    for k in ("backbone", "num_classes", "lr", "batch_size"): assert copy.hparams[k] == src.hparams[k], k
    assert copy.manifest == src.manifest and src.manifest["model"]["architecture"] == "test_resnet"
    assert copy.confusion_matrices == src.confusion_matrices and sorted(src.confusion_matrices) == [0, 1]
    assert set(src.images) >= {"val/confusion_matrix", "val/misclassified"} and set(copy.images) == set(src.images)
    for k in src.images:
        assert [s for s, _ in copy.images[k]] == [s for s, _ in src.images[k]], k
        for (_, a), (_, b) in zip(src.images[k], copy.images[k]): assert (pixels(a) == pixels(b)).all(), k
    assert [s for s, _ in copy.tables["val/per_class"]] == [s for s, _ in src.tables["val/per_class"]] == [3, 6]
    for (_, a), (_, b) in zip(src.tables["val/per_class"], copy.tables["val/per_class"]):
        assert b.astype({"class": str}).to_dict("list") == a.astype({"class": str}).to_dict("list")
    assert copy.artifacts["notes.txt"] == b"copied too"


def test_a_tensorboard_run_copied_into_mlflow(source, workdir):
    copy = copy_run(source["tb"], "mlflow", {"experiment_name": "copies", "save_dir": str(workdir / "mlruns")})
    back = load_run(mlflow_local_uri(workdir / "mlruns"), run=copy.loggers[0].run_id)
    assert back.backend == "mlflow" and back.name == "source"
    same_run(back, source["tb"])


def test_an_mlflow_run_copied_into_wandb_offline_from_the_command_line(source, workdir, capsys):
    uri = mlflow_local_uri(source["root"] / "mlruns")
    assert main(["copy", uri, "--run", source["mlflow_id"], "--to", "wandb", "--param", "project=copies",
                 "--param", f"save_dir={workdir / 'wandb'}", "--param", "offline=true", "--name", "from_mlflow"]) == 0
    assert "copied" in capsys.readouterr().out
    back = load_run(next((workdir / "wandb" / "wandb").glob("offline-run-*")))
    assert back.backend == "wandb" and back.name == "from_mlflow"
    same_run(back, source["mlflow"])
