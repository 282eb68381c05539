"""Notebook re-runs: a second fit in the same process starts a new run in every backend and leaves the first one as it was."""
from pathlib import Path

from mlflow.tracking import MlflowClient

from autotimm import AutoTrainer, ImageClassifier, ImageDataModule, LoggerConfig, LoggingConfig
from autotimm.backends import mlflow_local_uri
from readers import WandbRun, csv_metrics

CONFIGS = [LoggerConfig("tensorboard", {"save_dir": "logs"}), LoggerConfig("csv", {"save_dir": "logs"}),
           LoggerConfig("mlflow", {"experiment_name": "reruns", "save_dir": "mlruns"}),
           LoggerConfig("wandb", {"project": "reruns", "save_dir": "wb", "offline": True})]


def _model(): return ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False,
                                     logging_config=LoggingConfig(log_confusion_matrix=True))
def _data(): return ImageDataModule(dataset_name="digits", image_size=16, batch_size=64)


def _ids(trainer):
    tb, csv, mlf, wb = trainer.loggers
    return Path(tb.log_dir).name, Path(csv.log_dir).name, mlf.run_id, wb.experiment.id


def test_fit_again_same_trainer_and_new_trainer(workdir, capsys):
    kw = dict(max_epochs=1, enable_progress_bar=False, limit_train_batches=3, live=False)
    trainer = AutoTrainer(logger=CONFIGS, **kw)
    trainer.fit(_model(), datamodule=_data())
    first = _ids(trainer)
    rows = len(csv_metrics("logs/lightning_logs/version_0"))
    capsys.readouterr()
    assert trainer.fit(_model(), datamodule=_data()) is None  # a re-run of the fit cell on a finished trainer
    assert "has already trained 1 epochs" in capsys.readouterr().out and _ids(trainer) == first  # says so, opens no run
    third_trainer = AutoTrainer(logger=CONFIGS, **kw)  # a new trainer in the same kernel: a new run
    third_trainer.fit(_model(), datamodule=_data())
    third = _ids(third_trainer)
    third_trainer.logger_manager.close()
    assert first[:2] == ("version_0", "version_0") and third[:2] == ("version_1", "version_1")
    assert not Path("logs/lightning_logs/version_2").exists()  # no empty run
    assert len({first[2], third[2]}) == 2 and len({first[3], third[3]}) == 2
    assert len(csv_metrics("logs/lightning_logs/version_0")) == rows  # the first run is untouched
    for v in ("version_0", "version_1"):
        assert "val/loss" in csv_metrics(f"logs/lightning_logs/{v}").columns
        assert len(list(Path(f"logs/lightning_logs/{v}").glob("events.out.tfevents.*"))) == 1
    client = MlflowClient(mlflow_local_uri("mlruns"))
    for run_id, name in zip((first[2], third[2]), ("version_0", "version_1")):
        r = client.get_run(run_id)
        assert r.info.run_name == name and r.info.status == "FINISHED" and len(client.get_metric_history(run_id, "val/loss")) == 1
    assert len(client.search_runs([r.info.experiment_id])) == 2
    runs = WandbRun.find("wb")
    assert len(runs) == 2 and sorted(len([row for row in r.history if "val/loss" in row]) for r in runs) == [1, 1]


def test_fit_again_with_more_epochs_trains_on_in_the_same_run(workdir):
    trainer = AutoTrainer(logger=CONFIGS[:2], max_epochs=1, enable_progress_bar=False, limit_train_batches=3, live=False)
    model = _model()
    trainer.fit(model, datamodule=_data())
    trainer.fit_loop.max_epochs = 2
    trainer.fit(model, datamodule=_data())
    assert trainer.current_epoch == 2 and trainer.run_name == "version_0"
    df = csv_metrics("logs/lightning_logs/version_0")
    assert sorted(df.dropna(subset=["val/loss"])["epoch"].tolist()) == [0, 1]
    assert not Path("logs/lightning_logs/version_1").exists()
