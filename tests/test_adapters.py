"""Other libraries' private names autotimm uses (docs/performance.ipynb, "Shortcuts autotimm takes") are changed only
while a run is open: the manager notes what a backend's build changed in its library (`Backend.process_globals`) and
puts it back when the run closes, so the user's own TensorBoard and MLflow calls later in the kernel meet the
libraries as they were."""
import importlib

from autotimm import LoggerConfig, LoggerManager
from autotimm.delivery import delivery_of
from helpers import mounted


def _globals(names):
    out = {}
    for name in names:
        mod, _, attr = name.partition(":")
        out[name] = getattr(importlib.import_module(mod), attr)
    return out


def test_library_globals_a_run_changes_are_put_back_when_it_closes(workdir, monkeypatch):
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"): monkeypatch.delenv(name, raising=False)
    from autotimm.backends import get_backend
    names = get_backend("tensorboard").process_globals + get_backend("mlflow").process_globals
    before = _globals(names)
    m = LoggerManager([LoggerConfig("tensorboard", {"save_dir": "logs"}),
                       LoggerConfig("mlflow", {"experiment_name": "a", "tracking_uri": "http://alice:pw@127.0.0.1:9"})])
    during = _globals(names)
    from tensorboard.summary.writer import record_writer
    from mlflow.utils import rest_utils
    assert getattr(record_writer.masked_crc32c, "in_c", False) and getattr(rest_utils.http_request, "_autotimm", False)
    assert during != before
    tb = m.loggers[0]
    delivery_of(tb).start()
    tb.log_metrics({"a": 1.0}, 0); tb.finalize("success")
    m.close()
    assert _globals(names) == before  # the libraries as they were
    import os
    assert "MLFLOW_TRACKING_PASSWORD" not in os.environ


def test_a_tensorboard_release_autotimm_does_not_know_keeps_its_own_checksum(workdir, monkeypatch):
    "The fallback: TensorBoard's own checksum, untouched, and its reader reads every point."
    import tensorboard
    from tensorboard.summary.writer import record_writer
    from readers import tensorboard_scalars
    own = record_writer.masked_crc32c
    monkeypatch.setattr(tensorboard, "__version__", "3.0.0")
    m = LoggerManager([LoggerConfig("tensorboard", {"save_dir": "logs"})])
    assert record_writer.masked_crc32c is own
    tb = m.loggers[0]
    delivery_of(tb).start()
    for step in range(3): tb.log_metrics({"a": float(step)}, step)
    tb.finalize("success"); m.close()
    assert tensorboard_scalars(tb.log_dir)["a"] == [(0, 0.0), (1, 1.0), (2, 2.0)]


def test_an_mlflow_release_autotimm_does_not_know_gets_its_public_credentials_for_the_run(workdir, monkeypatch):
    "The fallback: MLflow's own MLFLOW_TRACKING_USERNAME/PASSWORD for the run (a warning says so), gone when it closes."
    import os
    import warnings
    import mlflow
    from mlflow.utils import rest_utils
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"): monkeypatch.delenv(name, raising=False)
    own = rest_utils.http_request
    monkeypatch.setattr(mlflow, "__version__", "4.0.0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = LoggerManager([LoggerConfig("mlflow", {"experiment_name": "a", "tracking_uri": "http://alice:pw@127.0.0.1:9"})])
    assert any("MLFLOW_TRACKING_USERNAME" in str(w.message) for w in caught)
    assert rest_utils.http_request is own
    assert (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]) == ("alice", "pw")
    assert "pw" not in repr(m) and "pw" not in m.loggers[0]._tracking_uri
    m.close()
    assert "MLFLOW_TRACKING_USERNAME" not in os.environ and "MLFLOW_TRACKING_PASSWORD" not in os.environ


def _fit_saving_to(folder, **kw):
    "Two short epochs on the digits with one checkpoint callback that saves into `folder`; the callback."
    from autotimm import AutoTrainer, ImageClassifier, ImageDataModule
    from autotimm.trainer import make_checkpoint
    ck = make_checkpoint("val/loss", dirpath=str(folder))
    trainer = AutoTrainer(max_epochs=2, logger=False, callbacks=[ck], enable_progress_bar=False, limit_train_batches=2,
                          limit_val_batches=1, **kw)
    trainer.fit(ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False),
                datamodule=ImageDataModule(dataset_name="digits", image_size=32, batch_size=32))
    return ck, trainer


def test_a_checkpoint_a_full_disk_cannot_take_warns_on_the_lightning_releases_autotimm_knows(workdir):
    "Lightning's private checkpoint methods are used on 2.6 only (both ends of the range run this test)."
    import warnings
    from autotimm.trainer import Checkpoint, CheckpointWarning, checkpoint_class
    assert checkpoint_class() is Checkpoint
    with mounted(workdir / "tiny", "-t", "tmpfs", "-o", "size=64k", "tmpfs") as disk:  # no checkpoint fits
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ck, trainer = _fit_saving_to(disk)
        assert trainer.current_epoch == 2  # training went on
        assert any(issubclass(w.category, CheckpointWarning) for w in caught)
        assert ck.best_model_path == "" and not list(disk.iterdir())  # names no file that is not there; no pieces left


def test_on_a_lightning_release_autotimm_does_not_know_checkpoints_are_lightnings_own(workdir, monkeypatch):
    "The fallback: Lightning's `ModelCheckpoint`, which stops training on a full disk, as plain Lightning does."
    import pytorch_lightning as pl
    import pytest
    from pytorch_lightning.callbacks import ModelCheckpoint
    monkeypatch.setattr(pl, "__version__", "2.99.0")
    monkeypatch.setattr("autotimm.trainer._told", False)
    with mounted(workdir / "tiny", "-t", "tmpfs", "-o", "size=64k", "tmpfs") as disk:
        with pytest.warns(RuntimeWarning, match="its own ModelCheckpoint is used"), pytest.raises(OSError):
            _fit_saving_to(disk)
    from autotimm.trainer import make_checkpoint
    assert type(make_checkpoint("val/loss")) is ModelCheckpoint


def _elsewhere(monkeypatch, store):
    "Build the MLflow logger as a process other than rank zero (a launcher's RANK=1) would, on a local store in `store`."
    from autotimm.backends import get_backend
    monkeypatch.setenv("RANK", "1")
    return get_backend("mlflow").build({"save_dir": str(store), "experiment_name": "elsewhere"})


def test_a_process_other_than_rank_zero_never_opens_the_mlflow_store(workdir, monkeypatch, recwarn):
    import mlflow.tracking
    made = mlflow.tracking.MlflowClient
    _elsewhere(monkeypatch, workdir / "other")
    assert not (workdir / "other" / "mlflow.db").exists()  # no store opened, so no tables created beside rank zero's
    assert mlflow.tracking.MlflowClient is made and not [w for w in recwarn if "opens the MLflow store" in str(w.message)]
    monkeypatch.setenv("RANK", "0")
    from autotimm.backends import get_backend
    get_backend("mlflow").build({"save_dir": str(workdir / "zero"), "experiment_name": "zero"})
    assert (workdir / "zero" / "mlflow.db").exists()  # rank zero opens it


def test_on_a_lightning_release_autotimm_does_not_know_every_process_opens_the_mlflow_store(workdir, monkeypatch):
    import pytest
    import pytorch_lightning as pl
    monkeypatch.setattr(pl, "__version__", "3.0.0")
    with pytest.warns(RuntimeWarning, match="every process opens the MLflow store"):
        _elsewhere(monkeypatch, workdir / "other")
    assert (workdir / "other" / "mlflow.db").exists()  # Lightning's own way: the logger works, the store is opened
