"""The registry, LoggerConfig's checks against the real Lightning loggers, LoggerManager, missing packages."""
import inspect
import os
import sys
from pathlib import Path

import pytest
from pytorch_lightning.loggers import CometLogger, CSVLogger, Logger, MLFlowLogger, TensorBoardLogger, WandbLogger

from autotimm import AutoTrainer, LoggerConfig, LoggerManager
from autotimm.backends import get_backend, list_backends
from autotimm.delivery import lightning_class

LIGHTNING = {"tensorboard": TensorBoardLogger, "csv": CSVLogger, "wandb": WandbLogger, "mlflow": MLFlowLogger,
             "comet": CometLogger}
DOCUMENTED = {  # the per-backend params of AutoTimm's logging documentation
    "tensorboard": {"save_dir", "name", "version", "log_graph", "default_hp_metric"},
    "wandb": {"project", "name", "tags", "notes", "group", "job_type", "save_dir", "offline"},
    "mlflow": {"experiment_name", "tracking_uri", "run_name", "tags", "save_dir"},
    "csv": {"save_dir", "name", "version", "flush_logs_every_n_steps"},
    "comet": {"project", "name", "save_dir", "tags"},  # not in AutoTimm: autotimm's names, as for W&B
}


def _init_params(cls):
    return {n for n, p in inspect.signature(cls.__init__).parameters.items()
            if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


@pytest.mark.parametrize("name", list_backends())
def test_accepted_params_are_the_documented_ones_plus_lightnings(name):
    accepted = set(get_backend(name).param_names)
    lightning = _init_params(LIGHTNING[name])
    assert DOCUMENTED[name] <= accepted and lightning <= accepted
    extra = set()  # what the Lightning logger forwards through **kwargs
    if name == "wandb":
        import wandb
        extra = set(inspect.signature(wandb.init).parameters)
    if name == "tensorboard":
        from torch.utils.tensorboard import SummaryWriter
        extra = _init_params(SummaryWriter) - {"log_dir"}
    if name == "comet":
        import comet_ml
        extra = set(inspect.signature(comet_ml.ExperimentConfig).parameters)
    assert accepted <= DOCUMENTED[name] | lightning | extra, accepted - (DOCUMENTED[name] | lightning | extra)


@pytest.mark.parametrize("name,params", [
    ("tensorboard", {"save_dir": "logs"}), ("csv", {"save_dir": "logs"}),
    ("wandb", {"project": "p", "offline": True}), ("mlflow", {"experiment_name": "e"})])
def test_manager_builds_the_real_lightning_loggers(name, params):
    m = LoggerManager(configs=[LoggerConfig(backend=name.upper(), params=params)])
    assert isinstance(m.loggers[0], LIGHTNING[name]) and type(m.loggers[0]).__name__ == LIGHTNING[name].__name__ and type(m.loggers[0]) is not LIGHTNING[name]
    assert m.get_logger_by_backend(name) is m.loggers[0] and m.configs[0].backend == name
    assert [l for l in m] == m.loggers and len(m) == 1


def test_manager_lookup_and_errors():
    m = LoggerManager(configs=[LoggerConfig("csv", {"save_dir": "a"}), LoggerConfig("csv", {"save_dir": "b"})])
    assert m.get_logger_by_backend("csv") is m[0] and m.get_logger_by_backend("tensorboard") is None
    with pytest.raises(ValueError, match="configs is empty"): LoggerManager(configs=[])
    with pytest.raises(TypeError, match="must be a LoggerConfig"): LoggerManager(configs=[{"backend": "csv"}])
    with pytest.raises(ValueError, match="Unknown backend 'tb'. Valid backends: "): m.get_logger_by_backend("tb")


def test_mlflow_local_store_is_sqlite_under_save_dir(workdir):
    m = LoggerManager([LoggerConfig("mlflow", {"experiment_name": "exp1"})])
    lg = m[0]
    lg.log_metrics({"x": 1.0}, step=0)  # creates the run: no file-store refusal from MLflow 3
    lg.finalize("success")  # ends the run, which flushes MLflow's async queue
    assert (workdir / "mlruns" / "mlflow.db").exists()
    from mlflow.tracking import MlflowClient
    client = MlflowClient(f"sqlite:///{workdir}/mlruns/mlflow.db")
    assert client.get_metric_history(lg.run_id, "x")[0].value == 1.0


@pytest.mark.parametrize("package,backend,params", [
    ("wandb", "wandb", {"project": "p"}), ("mlflow", "mlflow", {"experiment_name": "e"}),
    ("tensorboard", "tensorboard", {"save_dir": "logs"})])
def test_missing_package_says_what_to_install(monkeypatch, package, backend, params):
    monkeypatch.setitem(sys.modules, package, None)  # hide the installed package
    cfg = LoggerConfig(backend, params)  # configs validate without the package
    before = dict(os.environ)
    with pytest.raises(ModuleNotFoundError, match=rf"pip install 'autotimm\[{backend}\]'"):
        LoggerManager([LoggerConfig("csv", {"save_dir": "logs"}), cfg])
    assert dict(os.environ) == before  # a run that never started leaves no name behind for the next one
    assert not list(Path("logs").glob("*/version_*")) and not list(Path("logs").glob("version_*"))  # nor an empty folder


def test_trainer_logger_argument_kinds(workdir):
    cfgs = [LoggerConfig("csv", {"save_dir": "logs"}), LoggerConfig("tensorboard", {"save_dir": "logs"})]
    kw = dict(max_epochs=1, enable_progress_bar=False)
    assert [lightning_class(l) for l in AutoTrainer(logger=cfgs, **kw).loggers] == [CSVLogger, TensorBoardLogger]
    m = LoggerManager(cfgs)
    t = AutoTrainer(logger=m, **kw)
    assert t.loggers == m.loggers and t.logger_manager is m
    own = CSVLogger("logs")
    assert AutoTrainer(logger=own, **kw).loggers == [own]
    assert AutoTrainer(logger=[own], **kw).loggers == [own]
    assert AutoTrainer(logger=False, **kw).loggers == []
    with pytest.raises(TypeError, match="logger must be"): AutoTrainer(logger="tensorboard", **kw)
    with pytest.raises(TypeError, match="mixes"): AutoTrainer(logger=[cfgs[0], own], **kw)
    with pytest.raises(TypeError, match="logger must be"): AutoTrainer(logger={"backend": "csv"}, **kw)


def test_mlflow_where_a_run_goes(workdir, monkeypatch):
    "tracking_uri > save_dir > MLFLOW_TRACKING_URI > ./mlruns; MLflow's own global URI does not leak into a later run."
    uri = lambda params: LoggerManager([LoggerConfig("mlflow", {"experiment_name": "e", **params})])[0]._tracking_uri
    assert uri({}) == f"sqlite:///{workdir}/mlruns/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert uri({}) == "http://127.0.0.1:5999"
    assert uri({"save_dir": "a"}) == f"sqlite:///{workdir}/a/mlflow.db"
    assert uri({"save_dir": "a", "tracking_uri": "http://127.0.0.1:1"}) == "http://127.0.0.1:1"


def _wandb_files(settings=None):
    "The files folder of a short fit's offline W&B run (given `settings`, if any)."
    from autotimm import ImageClassifier, ImageDataModule
    params = {"project": "p", "save_dir": "wb", "offline": True, **({"settings": settings} if settings is not None else {})}
    manager = LoggerManager([LoggerConfig("wandb", params)])
    trainer = AutoTrainer(max_epochs=1, logger=manager, enable_progress_bar=False, limit_train_batches=2, limit_val_batches=1)
    trainer.fit(ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False),
                datamodule=ImageDataModule(dataset_name="digits", image_size=16, batch_size=8))
    manager.close()
    from pathlib import Path
    (run,) = Path("wb/wandb").glob("offline-run-*")
    return run / "files"


def test_a_wandb_run_keeps_the_installed_packages_as_wandb_lists_them(workdir):
    from wandb.util import working_set
    wanted = {f"{p.key}=={p.version}" for p in working_set()}
    lines = (_wandb_files() / "requirements.txt").read_text().splitlines()
    assert set(lines) == wanted and len(lines) == len(wanted)  # every package once, W&B's names and versions


def test_wandb_settings_that_turn_the_requirements_off_are_kept(workdir):
    assert not (_wandb_files({"x_save_requirements": False}) / "requirements.txt").exists()


def test_tensorboard_checksums_made_in_c_are_the_ones_tensorboard_checks(workdir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.summary.writer import record_writer
    from autotimm.backends import log_image
    from autotimm.plots import confusion_matrix_png
    manager = LoggerManager([LoggerConfig("tensorboard", {"save_dir": "tb"})])
    (lg,) = manager.loggers
    assert getattr(record_writer.masked_crc32c, "in_c", False)  # google-crc32c comes with the tensorboard extra
    png = confusion_matrix_png([[5, 1], [0, 7]], ["cat", "dog"])
    for step in range(3):
        lg.log_metrics({"val/loss": 1.0 / (step + 1)}, step=step)
        log_image([lg], "val/confusion_matrix", png, step=step, name=f"epoch_{step:03d}")
    manager.close()
    acc = EventAccumulator(lg.log_dir, size_guidance={"scalars": 0, "images": 0}); acc.Reload()  # a wrong sum: records dropped
    assert [(e.step, e.value) for e in acc.Scalars("val/loss")] == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]
    assert [(e.step, e.encoded_image_string) for e in acc.Images("val/confusion_matrix")] == [(s, png) for s in range(3)]
