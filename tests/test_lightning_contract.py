"""Lightning's logger contract, kept by the guarded loggers. Each test is one behaviour found by running Lightning's own
`tests/tests_pytorch/loggers` (2.6.5) against the loggers as `LoggerManager` builds them; real CSV, TensorBoard, a local
MLflow store and W&B offline, with fakes only to inject a fault (an outage, a slow write)."""
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from pytorch_lightning.loggers import CSVLogger, MLFlowLogger, TensorBoardLogger, WandbLogger

from autotimm import LoggerManager
from autotimm.delivery import delivery_of
from autotimm.trainer import start_loggers
from helpers import finish, local_configs, local_params
from readers import WandbRun, csv_metrics, mlflow_scalars, tensorboard_scalars


def manager(backend, **kw):
    "One backend's logger, built and guarded by `LoggerManager` as `AutoTrainer` builds it."
    m = LoggerManager(local_configs(backends=[backend]), retry_interval=0.1, **kw)
    return m, m.loggers[0]


def outage(monkeypatch, cls, method="log_metrics"):
    "The fault: `cls.method` raises `ConnectionError` (the backend unreachable) while the returned state's 'down' is true."
    state, call = {"down": True}, getattr(cls, method)
    def flaky(self, *args, **kwargs):
        if state["down"]: raise ConnectionError("the backend is unreachable")
        return call(self, *args, **kwargs)
    monkeypatch.setattr(cls, method, flaky)
    return state


def points(backend, lg, key):
    "`[(step, value)]` of `key`, read back with the backend's own reader."
    if backend == "csv":
        df = csv_metrics(lg.log_dir)
        return [(int(s), float(v)) for s, v in zip(df["step"], df[key]) if v == v]
    if backend == "tensorboard": return tensorboard_scalars(lg.log_dir).get(key, [])
    if backend == "mlflow": return mlflow_scalars(lg.experiment, lg.run_id).get(key, [])
    if backend == "wandb": return WandbRun.find(local_params("wandb")["save_dir"])[0].scalars().get(key, [])


# Lightning's CSVLogger takes tensors, numpy scalars and strings in `log_metrics` (test_csv.py::test_log_metrics).
# During an outage the guarded logger spools them as `str(value)` ("tensor(0.5000)", "0.25"); the spool's check then
# refuses the whole file, so nothing of that backend is replayed again: not the plain numbers, not later events.

@pytest.mark.parametrize("value", [torch.tensor(0.5), np.float32(0.25), "text"], ids=["tensor", "numpy-float32", "str"])
def test_a_value_spooled_in_an_outage_never_blocks_the_replay(value, monkeypatch):
    from lightning_fabric.loggers.csv_logs import _ExperimentWriter
    m, lg = manager("csv")
    lg.log_metrics({"a": 0.0}, step=0)
    lg.save()
    state = outage(monkeypatch, _ExperimentWriter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lg.log_metrics({"a": 1.0, "x": value}, step=1)
        lg.save()
        state["down"] = False
        lg.log_metrics({"a": 2.0}, step=2)
        finish(m)
    assert points("csv", lg, "a") == [(0, 0.0), (1, 1.0), (2, 2.0)]
    assert m.summary()["csv"]["pending"] == 0


# Lightning's TensorBoardLogger raises ValueError for a string value: that call fails, the rest of the run is logged.
# The guarded one takes the error for an outage: TensorBoard is marked down and every later point stays in the spool,
# which cannot be replayed (the string in it is refused).

def test_a_value_tensorboard_refuses_costs_only_that_value():
    m, lg = manager("tensorboard")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lg.log_metrics({"a": 0.0}, step=0)
        lg.log_metrics({"note": "text"}, step=1)  # plain Lightning: ValueError "you tried to log text ..."
        for step in (2, 3): lg.log_metrics({"a": float(step)}, step=step)
        finish(m)
    assert [s for s, _ in points("tensorboard", lg, "a")] == [0, 2, 3]
    assert m.summary()["tensorboard"]["pending"] == 0


# Lightning: `CSVLogger.log_hyperparams(params=None)` writes hparams.yaml (test_csv.py::test_no_name); the guarded
# `log_hyperparams(self, params, ...)` makes params required, so the call raises TypeError.

def test_csv_log_hyperparams_without_params():
    m, lg = manager("csv")
    lg.log_hyperparams()
    finish(m)
    assert (Path(lg.log_dir)/"hparams.yaml").is_file()


# A patch of the Lightning class's `log_metrics` (what Lightning's tests do with mock.patch, and what a subclass does)
# is honoured for CSV and TensorBoard, but bypassed for MLflow: its backend writes `experiment.log_batch` itself.
@pytest.mark.parametrize("backend, cls", [
    ("csv", CSVLogger), ("tensorboard", TensorBoardLogger),
    ("mlflow", MLFlowLogger)])
def test_the_lightning_class_log_metrics_is_the_one_called(backend, cls, monkeypatch):
    m, lg = manager(backend)
    seen, original = [], cls.log_metrics
    def recording(self, metrics, step=None):
        seen.append((step, dict(metrics)))
        return original(self, metrics, step)
    monkeypatch.setattr(cls, "log_metrics", recording)
    lg.log_metrics({"a": 1.0}, step=3)
    finish(m)
    assert seen == [(3, {"a": 1.0})]
    assert points(backend, lg, "a") == [(3, 1.0)]


# Lightning's trainer calls `logger.log_metrics(metrics=..., step=...)`; the guarded logger hands them on positionally,
# so a patched or overridden log_metrics sees another call (test_tensorboard.py::test_tensorboard_with_accumulated_gradients
# reads the call's keywords).

def test_log_metrics_is_handed_on_as_lightning_calls_it(monkeypatch):
    m, lg = manager("tensorboard")
    calls, original = [], TensorBoardLogger.log_metrics
    def recording(self, *args, **kwargs):
        calls.append((args, kwargs))
        return original(self, *args, **kwargs)
    monkeypatch.setattr(TensorBoardLogger, "log_metrics", recording)
    lg.log_metrics(metrics={"a": 1.0}, step=3)
    finish(m)
    assert calls == [((), {"metrics": {"a": 1.0}, "step": 3})]


# While W&B's run starts in the background (what `AutoTrainer` does) its events wait on the delivery's worker, as they
# do all run long for W&B and Comet online and MLflow on a server. A direct call on `logger.experiment` waits only for
# the start, not for the events queued before it, so it lands first. The fault: the worker's first write is slow.

def test_a_call_on_experiment_waits_for_what_was_logged_before_it(monkeypatch):
    m, lg = manager("wandb")
    gate, write = threading.Event(), WandbLogger.log_metrics
    def slow(self, *args, **kwargs):  # a slow network: held until the direct call was made (at most 5 s)
        gate.wait(5)
        return write(self, *args, **kwargs)
    monkeypatch.setattr(WandbLogger, "log_metrics", slow)
    start_loggers([lg])
    lg.log_metrics({"a": 1.0}, step=0)
    lg.experiment.log({"b": 2.0})  # the user's own call, after the metrics
    gate.set()
    finish(m)
    history = WandbRun.find(local_params("wandb")["save_dir"])[0].history
    order = [k for row in history for k in ("a", "b") if k in row]
    assert order == ["a", "b"]


# Lightning's WandbLogger.log_image/log_table/log_text go through `log_metrics` with W&B media objects as values. During an
# outage they are spooled as their text ("[<wandb...Image object at 0x...>]"), the spool refuses it, and nothing after
# is replayed: the plain numbers logged around them are lost to W&B too.

def test_wandb_media_logged_in_an_outage_never_block_the_replay(monkeypatch):
    m, lg = manager("wandb")
    lg.log_metrics({"a": 0.0}, step=0)
    state = outage(monkeypatch, WandbLogger)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lg.log_metrics({"a": 1.0}, step=1)
        lg.log_image("samples", [np.zeros((8, 8, 3), dtype=np.uint8)], step=1)
        lg.log_text("notes", columns=["text"], data=[["hello"]], step=1)
        state["down"] = False
        lg.log_metrics({"a": 2.0}, step=2)
        finish(m)
    assert points("wandb", lg, "a") == [(0, 0.0), (1, 1.0), (2, 2.0)]
    assert m.summary()["wandb"]["pending"] == 0


# Lightning's test_wandb.py::test_wandb_pickle: a pickled trainer's logger is still a `WandbLogger` by name. The guarded
# class is a subclass named `GuardedWandbLogger` (isinstance holds), so code and messages keyed on the class name differ.

def test_a_guarded_logger_keeps_lightning_s_class_name_through_pickle():
    import pickle
    m, lg = manager("csv")
    again = pickle.loads(pickle.dumps(lg))
    again.log_metrics({"a": 1.0}, step=0)
    again.save()
    assert isinstance(again, CSVLogger) and delivery_of(again) is not None
    assert type(again).__name__ == CSVLogger.__name__
    finish(m)
