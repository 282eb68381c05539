"""Bad input fails with a message naming the field and the fix, before any training starts and before anything is written."""
import os

import pytest

from autotimm import (AutoTrainer, ImageClassifier, ImageDataModule, LoggerConfig, LoggerManager, LoggingConfig,
                      MetricConfig)

CASES = [  # (id, callable, exception type, text the message must contain)
    ("unknown backend", lambda: LoggerConfig("tensorbord", {"save_dir": "logs"}), ValueError, "Did you mean 'tensorboard'?"),
    ("backend not a string", lambda: LoggerConfig(None, {"save_dir": "logs"}), ValueError, "backend must be one of"),
    ("params not a dict", lambda: LoggerConfig("csv", "logs"), TypeError, "params must be a dict"),
    ("tensorboard without save_dir", lambda: LoggerConfig("tensorboard", {"name": "x"}), ValueError, "missing required param(s) 'save_dir'"),
    ("csv without save_dir", lambda: LoggerConfig("csv", {}), ValueError, "'save_dir'"),
    ("wandb without project", lambda: LoggerConfig("wandb", {"name": "run"}), ValueError, "'project'"),
    ("mlflow without experiment_name", lambda: LoggerConfig("mlflow", {"tracking_uri": "http://127.0.0.1:1"}), ValueError, "'experiment_name'"),
    ("unknown param", lambda: LoggerConfig("tensorboard", {"save_dir": "logs", "log_grpah": True}), ValueError, "Did you mean 'log_graph'?"),
    ("wrong param type", lambda: LoggerConfig("tensorboard", {"save_dir": 3}), TypeError, "params['save_dir'] must be a path"),
    ("offline not bool", lambda: LoggerConfig("wandb", {"project": "p", "offline": "false"}), TypeError, "params['offline'] must be True or False"),
    ("flush interval 0", lambda: LoggerConfig("csv", {"save_dir": "l", "flush_logs_every_n_steps": 0}), ValueError, "must be >= 1"),
    ("mlflow file: uri", lambda: LoggerConfig("mlflow", {"experiment_name": "e", "tracking_uri": "file:./mlruns"}), ValueError, "Leave tracking_uri empty"),
    ("empty manager", lambda: LoggerManager(configs=[]), ValueError, "configs is empty"),
    ("strict not bool", lambda: LoggerConfig("csv", {"save_dir": "l"}, strict="yes"), TypeError, "strict must be True or False"),
    ("manager strict not bool", lambda: LoggerManager([LoggerConfig("csv", {"save_dir": "l"})], strict=1), TypeError, "strict must be True, False or None"),
    ("retry_interval 0", lambda: LoggerManager([LoggerConfig("csv", {"save_dir": "l"})], retry_interval=0), ValueError, "retry_interval must be a positive number"),
    ("manager of dicts", lambda: LoggerManager(configs=[{"backend": "csv"}]), TypeError, "must be a LoggerConfig"),
    ("trainer logger string", lambda: AutoTrainer(logger="csv"), TypeError, "Did you mean [LoggerConfig(backend=...)]?"),
    ("trainer max_epochs 0", lambda: AutoTrainer(max_epochs=0, logger=False), ValueError, "max_epochs must be a positive int"),
    ("trainer checkpoint_mode", lambda: AutoTrainer(logger=False, checkpoint_monitor="val/loss", checkpoint_mode="minimum"), ValueError, "'min', 'max'"),
    ("LoggingConfig not bool", lambda: LoggingConfig(log_gradient_norm=1), TypeError, "log_gradient_norm must be True or False"),
    ("metric stage misspelt", lambda: MetricConfig(name="acc", metric_class="Accuracy", stages=["validation"]), ValueError, "Valid stages: train, val, test"),
    ("metric backend misspelt", lambda: MetricConfig(name="acc", backend="torchmetric", metric_class="Accuracy"), ValueError, "Did you mean 'torchmetrics'?"),
    ("metric without class", lambda: MetricConfig(name="acc"), ValueError, "metric_class is required"),
    ("metric class misspelt", lambda: ImageClassifier(backbone="test_resnet", pretrained=False,
        metrics=[MetricConfig(name="acc", metric_class="Acuracy", params={"task": "multiclass"})]), ValueError, "Did you mean 'Accuracy'"),
    ("metric params wrong", lambda: ImageClassifier(backbone="test_resnet", pretrained=False,
        metrics=[MetricConfig(name="acc", metric_class="Accuracy", params={"task": "multiclas"})]), ValueError, "MetricConfig('acc'): Accuracy("),
    ("unknown backbone", lambda: ImageClassifier(backbone="resnet5O", pretrained=False), ValueError, "Close matches: resnet50"),
    ("num_classes 1", lambda: ImageClassifier(backbone="test_resnet", num_classes=1, pretrained=False), ValueError, "num_classes must be an int >= 2"),
    ("negative lr", lambda: ImageClassifier(backbone="test_resnet", lr=-1, pretrained=False), ValueError, "lr must be a positive number"),
    ("optimizer misspelt", lambda: ImageClassifier(backbone="test_resnet", optimizer="adamw8", pretrained=False), ValueError, "optimizer must be one of"),
    ("metrics not MetricConfig", lambda: ImageClassifier(backbone="test_resnet", metrics=["accuracy"], pretrained=False), TypeError, "metrics must be a list of MetricConfig"),
    ("dataset misspelt", lambda: ImageDataModule(dataset_name="cifar-10"), ValueError, "Did you mean 'CIFAR10'?"),
    ("batch_size 0", lambda: ImageDataModule(dataset_name="digits", batch_size=0), ValueError, "batch_size must be a positive int"),
    ("val_split 1.5", lambda: ImageDataModule(dataset_name="digits", val_split=1.5), ValueError, "val_split must be a fraction"),
]


@pytest.mark.parametrize("make,exc,text", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_fails_clearly_and_writes_nothing(workdir, make, exc, text):
    with pytest.raises(exc) as e:
        make()
    assert text in str(e.value), str(e.value)
    assert os.listdir(workdir) == [], os.listdir(workdir)


def _fit(workdir, model, data, extra=(), **kw):
    "Fit with CSV logging (and `extra` configs); return whether a single training batch ran."
    ran = []
    from pytorch_lightning import Callback
    class Spy(Callback):
        def on_train_batch_start(self, *a): ran.append(1)
    trainer = AutoTrainer(max_epochs=1, logger=[LoggerConfig("csv", {"save_dir": "logs"}), *extra], callbacks=[Spy()],
                          enable_progress_bar=False, **kw)
    return trainer, ran


@pytest.mark.parametrize("case", ["monitor never logged", "num_classes vs data", "missing data_dir",
                                  "class folder without images", "no train folder", "a file that is no image",
                                  "unreachable tracking URI"])
def test_fit_time_input_errors_come_before_training(workdir, image_folders, case):
    model = ImageClassifier(backbone="test_resnet", num_classes=3, pretrained=False,
                            metrics=[MetricConfig(name="accuracy", metric_class="Accuracy", params={"task": "multiclass"})])
    data, kw = ImageDataModule(data_dir="data", image_size=16, batch_size=8), {}
    if case == "monitor never logged": kw, text = {"checkpoint_monitor": "val/acc"}, "Did you mean 'val/accuracy'? Logged keys: train/loss, val/loss"
    if case == "num_classes vs data":
        model = ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False)
        text = "num_classes=10 but the data has 3 classes"
    if case == "missing data_dir": data, text = ImageDataModule(data_dir="nope"), "data_dir nope does not exist"
    if case == "class folder without images":
        (image_folders / "train" / "empty").mkdir()
        text = "class folder data/train/empty holds no images"
    if case == "no train folder":
        (image_folders / "train").rename(image_folders / "training")
        text = "no train folder at data/train"
    if case == "a file that is no image":
        (image_folders / "train" / "dog" / "notes.png").write_text("not an image")
        text = "data/train/dog/notes.png is not a readable image"
    extra = []
    if case == "unreachable tracking URI":
        from helpers import free_port
        port = free_port()  # nothing listens there
        extra = [LoggerConfig("mlflow", {"experiment_name": "e", "tracking_uri": f"http://127.0.0.1:{port}"})]
        text = f"tracking_uri http://127.0.0.1:{port} is unreachable"
    trainer, ran = _fit(workdir, model, data, extra=extra, **kw)
    with pytest.raises((ValueError, FileNotFoundError, ConnectionError)) as e:
        trainer.fit(model, datamodule=data)
    assert text in str(e.value), str(e.value)
    logged = [p for p in (workdir / "logs").rglob("*") if p.is_file()]
    assert ran == [] and logged == []  # the run's folder was reserved when the loggers were built, and nothing was logged


def test_unwritable_save_dir_fails_when_the_loggers_are_built(workdir):
    (workdir / "afile").write_text("x")  # a folder cannot be made inside a file (root can write anywhere else)
    with pytest.raises(PermissionError, match="save_dir 'afile/logs' is not writable"):
        LoggerManager([LoggerConfig("csv", {"save_dir": "afile/logs"})])


def test_corrupt_image_met_in_training_is_reported_with_its_path(workdir, image_folders):
    good = (image_folders / "train" / "cat" / "0.png").read_bytes()
    (image_folders / "train" / "cat" / "0.png").write_bytes(good[:60])  # the header survives, the data does not
    model = ImageClassifier(backbone="test_resnet", num_classes=3, pretrained=False)
    trainer, _ = _fit(workdir, model, ImageDataModule(data_dir="data", image_size=16, batch_size=8, num_workers=0))
    with pytest.raises(RuntimeError, match="cannot read image data/train/cat/0.png"):
        trainer.fit(model, datamodule=ImageDataModule(data_dir="data", image_size=16, batch_size=8, num_workers=0))
