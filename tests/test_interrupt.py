"""Ctrl-C in the middle of an epoch: every backend keeps what was logged and is closed; the message says where."""
import signal
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from autotimm import AutoTrainer, ImageClassifier, ImageDataModule, LoggerConfig, LoggingConfig
from autotimm.backends import mlflow_local_uri
from helpers import ctrl_c
from readers import WandbRun, csv_metrics, tensorboard_scalars


def test_keyboard_interrupt_mid_epoch(workdir, capsys):
    handler = signal.getsignal(signal.SIGINT)
    trainer = AutoTrainer(max_epochs=3, live=False, enable_progress_bar=False, callbacks=[ctrl_c(epoch=1, batch=3)], logger=[
        LoggerConfig("tensorboard", {"save_dir": "logs"}), LoggerConfig("csv", {"save_dir": "logs", "flush_logs_every_n_steps": 1000}),
        LoggerConfig("mlflow", {"experiment_name": "ctrl-c", "save_dir": "mlruns"}),
        LoggerConfig("wandb", {"project": "ctrl-c", "save_dir": "wb", "offline": True})], log_every_n_steps=2)
    model = ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False, logging_config=LoggingConfig(log_confusion_matrix=True))
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(model, datamodule=ImageDataModule(dataset_name="digits", image_size=16, batch_size=64))
    assert signal.getsignal(signal.SIGINT) is handler  # Ctrl-C works again in this process (the notebook stop button)
    out = capsys.readouterr().out
    assert "training interrupted at epoch 2" in out and "status KILLED" in out and "logs/lightning_logs/version_0" in out
    tb, csv, mlf, wb = trainer.loggers
    # CSV: rows buffered in memory (flush every 1000 steps) were written at the interrupt
    df = csv_metrics(csv.log_dir)
    steps = df.dropna(subset=["train/loss"])["step"].tolist()
    assert max(steps) >= 21 and df["val/loss"].notna().sum() == 1  # epoch 0's validation, then part of epoch 1
    assert tensorboard_scalars(tb.log_dir)["val/loss"][0][0] == df.dropna(subset=["val/loss"])["step"].iloc[0]
    run = MlflowClient(mlflow_local_uri("mlruns")).get_run(mlf.run_id)
    assert run.info.status == "KILLED" and "val/loss" in run.data.metrics
    (w,) = WandbRun.find("wb")
    assert w.exit_code == 130  # the W&B run is finished, marked as interrupted (the code of a Ctrl-C)
    assert any("val/loss" in row for row in w.history) and (Path(w.dir) / "files" / "val_confusion_matrix" / "epoch_000.json").exists()
