"""Every setting of every public constructor is checked when it is given, before any training and before anything is
written: the error names the field and what it must be. A bool is no number, NaN and ±inf are no numbers, numbers have
sane ranges, and a misspelt choice gets a did-you-mean."""
import os

import pytest

from autotimm import (AutoTrainer, ImageClassifier, ImageDataModule, LoggerConfig, LoggerManager, LoggingConfig,
                      MetricConfig)

NAN, INF = float("nan"), float("inf")
CSV = [LoggerConfig("csv", {"save_dir": "logs"})]


def model(**kw): return ImageClassifier(**{"backbone": "test_resnet", "pretrained": False, **kw})
def data(**kw): return ImageDataModule(dataset_name="digits", **kw)
def trainer(**kw): return AutoTrainer(**{"logger": CSV, **kw})
def manager(**kw): return LoggerManager(CSV, **kw)


CASES = [  # (id, make, field, more text the message must hold)
    ("lr inf", lambda: model(lr=INF), "lr", "positive number"),
    ("lr nan", lambda: model(lr=NAN), "lr", "positive number"),
    ("lr bool", lambda: model(lr=True), "lr", "got bool"),
    ("lr string", lambda: model(lr="0.1"), "lr", "got str"),
    ("lr huge", lambda: model(lr=1e6), "lr", "up to 10"),
    ("weight_decay bool", lambda: model(weight_decay=True), "weight_decay", "got bool"),
    ("weight_decay negative", lambda: model(weight_decay=-0.1), "weight_decay", "from 0 to 1"),
    ("weight_decay nan", lambda: model(weight_decay=NAN), "weight_decay", "from 0 to 1"),
    ("num_classes float", lambda: model(num_classes=10.0), "num_classes", "int >= 2"),
    ("num_classes bool", lambda: model(num_classes=True), "num_classes", "int >= 2"),
    ("num_classes huge", lambda: model(num_classes=10**9), "num_classes", "at most"),
    ("optimizer misspelt", lambda: model(optimizer="adamw8"), "optimizer", "Did you mean 'adamw'?"),
    ("scheduler misspelt", lambda: model(scheduler="cosin"), "scheduler", "Did you mean 'cosine'?"),
    ("pretrained string", lambda: model(pretrained="yes"), "pretrained", "True or False"),
    ("metrics string", lambda: model(metrics="accuracy"), "metrics", "list of MetricConfig"),
    ("logging_config dict", lambda: model(logging_config={"log_gradient_norm": True}), "logging_config", "LoggingConfig"),
    ("batch_size 2**40", lambda: data(batch_size=2**40), "batch_size", "up to 65536"),
    ("batch_size bool", lambda: data(batch_size=True), "batch_size", "positive int"),
    ("batch_size float", lambda: data(batch_size=32.0), "batch_size", "positive int"),
    ("image_size 0", lambda: data(image_size=0), "image_size", "positive int"),
    ("image_size huge", lambda: data(image_size=10**6), "image_size", "up to 8192"),
    ("num_workers negative", lambda: data(num_workers=-1), "num_workers", "from 0 to"),
    ("num_workers bool", lambda: data(num_workers=True), "num_workers", "from 0 to"),
    ("val_split nan", lambda: data(val_split=NAN), "val_split", "fraction"),
    ("val_split 1", lambda: data(val_split=1), "val_split", "fraction"),
    ("val_split bool", lambda: data(val_split=True), "val_split", "fraction"),
    ("seed -1", lambda: data(seed=-1), "seed", "from 0 to 4294967295"),
    ("seed float", lambda: data(seed=1.5), "seed", "int"),
    ("seed too big", lambda: data(seed=2**40), "seed", "from 0 to 4294967295"),
    ("download string", lambda: data(download="yes"), "download", "True or False"),
    ("augment string", lambda: data(augment="yes"), "augment", "True, False or a dict"),
    ("augment key misspelt", lambda: data(augment={"hflips": 0.5}), "augment", "Did you mean 'hflip'?"),
    ("train_transform string", lambda: data(train_transform="resize"), "train_transform", "callable"),
    ("data_dir number", lambda: ImageDataModule(data_dir=3), "data_dir", "a path"),
    ("system_metrics_interval 1e-9", lambda: LoggingConfig(system_metrics_interval=1e-9), "system_metrics_interval", "at least 0.1"),
    ("system_metrics_interval nan", lambda: LoggingConfig(system_metrics_interval=NAN), "system_metrics_interval", "seconds"),
    ("system_metrics_interval bool", lambda: LoggingConfig(system_metrics_interval=True), "system_metrics_interval", "got bool"),
    ("misclassified_count bool", lambda: LoggingConfig(misclassified_count=True), "misclassified_count", "from 1 to 64"),
    ("log_on_step string", lambda: MetricConfig(name="acc", metric_class="Accuracy", log_on_step="yes"), "log_on_step", "True or False"),
    ("retry_interval 1e-9", lambda: manager(retry_interval=1e-9), "retry_interval", "at least 0.1"),
    ("retry_interval nan", lambda: manager(retry_interval=NAN), "retry_interval", "seconds"),
    ("retry_interval bool", lambda: manager(retry_interval=True), "retry_interval", "got bool"),
    ("checkpoint_mode maximum", lambda: trainer(checkpoint_monitor="val/loss", checkpoint_mode="maximum"), "checkpoint_mode", "Did you mean 'max'?"),
    ("checkpoint_mode alone", lambda: trainer(checkpoint_mode="max"), "checkpoint_mode", "needs a checkpoint_monitor"),
    ("checkpoint_monitor number", lambda: trainer(checkpoint_monitor=3), "checkpoint_monitor", "metric key"),
    ("live yes", lambda: trainer(live="yes"), "live", "True, False or None"),
    ("max_epochs bool", lambda: trainer(max_epochs=True), "max_epochs", "positive int"),
    ("max_epochs float", lambda: trainer(max_epochs=2.5), "max_epochs", "positive int"),
    ("max_epochs -2", lambda: trainer(max_epochs=-2), "max_epochs", "-1 for no limit"),
    ("run_name slash", lambda: trainer(run_name="a/b"), "run_name", "without '/'"),
    ("run_name blank", lambda: trainer(run_name="  "), "run_name", "non-empty"),
    ("on_resume misspelt", lambda: trainer(on_resume="forks"), "on_resume", "Did you mean 'fork'?"),
    ("callbacks of strings", lambda: trainer(callbacks=["early_stopping"]), "callbacks", "Callback objects"),
]


@pytest.mark.parametrize("make,field,text", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_setting_names_its_field_before_anything_is_written(workdir, make, field, text):
    with pytest.raises((TypeError, ValueError)) as e:
        make()
    message = str(e.value)
    assert f"{field} must" in message or f"{field}=" in message or f"{field} has" in message, message
    assert text in message, message
    assert os.listdir(workdir) == [], os.listdir(workdir)  # no run folder, no version_0, no store


def test_a_trainer_argument_lightning_refuses_gives_back_the_run_folder(workdir):
    with pytest.raises((TypeError, ValueError)) as e:
        AutoTrainer(logger=CSV, precision="bogus")
    assert "precision" in str(e.value)
    assert not (workdir / "logs" / "lightning_logs" / "version_0").exists()
    assert "AUTOTIMM_RUN_NAME" not in os.environ


def test_a_ckpt_path_that_is_no_file_fails_before_training(workdir):
    from helpers import digits, tiny_classifier
    trainer = AutoTrainer(max_epochs=1, logger=CSV, enable_progress_bar=False, live=False)
    with pytest.raises(FileNotFoundError, match="ckpt_path 'nope.ckpt' is no file"):
        trainer.fit(tiny_classifier(), datamodule=digits(), ckpt_path="nope.ckpt")
    assert [p for p in (workdir / "logs").rglob("*") if p.is_file()] == []  # the run's folder was reserved; nothing logged
