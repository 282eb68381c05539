"""A failing backend never stops training nor loses an event: a real MLflow server killed mid-run, a backend
that raises on every call (a fake, only to raise), replay later from the command line, and strict=True."""
import http.client
import subprocess
import sys
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from pytorch_lightning import Callback
from pytorch_lightning.loggers import CSVLogger, Logger

from autotimm import AutoTrainer, LoggerConfig, LoggerManager
from autotimm.backends import Backend, Param, get_backend, register_backend, unregister_backend
from autotimm.delivery import BackendError, BackendWarning, lightning_class
from helpers import digits as data, free_port, start_mlflow_server, stop_mlflow_server, tiny_classifier as model
from readers import WandbRun, csv_scalars, mlflow_artifacts, mlflow_scalars, tensorboard_scalars

EPOCHS = 4


def four_backends(tracking_uri):
    return [LoggerConfig("tensorboard", {"save_dir": "logs"}), LoggerConfig("csv", {"save_dir": "logs"}),
            LoggerConfig("wandb", {"project": "iso", "offline": True, "save_dir": "wandb"}),
            LoggerConfig("mlflow", {"experiment_name": "iso", "tracking_uri": tracking_uri})]


class ServerOutage(Callback):
    "Kill the MLflow server (SIGKILL) when epoch `down` starts; start it again (same port, same store) at epoch `up`."
    def __init__(self, proc, root, port, down=1, up=None):
        self.proc, self.root, self.port, self.down, self.up = proc, root, port, down, up

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.down: stop_mlflow_server(self.proc, signal=9)
        if trainer.current_epoch == self.up: self.proc = start_mlflow_server(self.root, self.port)


def fit_through_outage(tmp_path, up, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # autotimm retries; MLflow's own retries only cost time
    root, port = tmp_path / "server", free_port()
    root.mkdir()
    outage = ServerOutage(start_mlflow_server(root, port), root, port, up=up)
    uri = f"http://127.0.0.1:{port}"
    trainer = AutoTrainer(max_epochs=EPOCHS, enable_progress_bar=False, limit_train_batches=6, limit_val_batches=3,
                          callbacks=[outage], logger=four_backends(uri))
    for lg in trainer.logger_manager.loggers: lg._delivery.retry_interval = 1.0
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer.fit(model(), datamodule=data())
    except BaseException:
        stop_mlflow_server(outage.proc)  # the caller stops it otherwise
        raise
    return trainer, outage, uri, [w for w in caught if issubclass(w.category, BackendWarning)]


def assert_mlflow_holds_the_csv(uri, run_id, csv_dir, epochs=EPOCHS):
    client = MlflowClient(uri)
    got, ref = mlflow_scalars(client, run_id), csv_scalars(csv_dir)
    assert set(ref) <= set(got)
    for key in ref: assert len(got[key]) == len(ref[key]) and got[key] == ref[key], key  # same points, same steps
    arts = mlflow_artifacts(client, run_id)
    assert {f"val_confusion_matrix/epoch_{e:03d}.png" for e in range(epochs)} <= set(arts)
    return client.get_run(run_id)


def test_mlflow_server_killed_and_restarted_mid_run(tmp_path, workdir, capsys, monkeypatch):
    trainer, outage, uri, caught = fit_through_outage(tmp_path, up=3, monkeypatch=monkeypatch)
    try:
        assert trainer.current_epoch == EPOCHS  # training finished
        tb, csv, wb, mlf = trainer.logger_manager.loggers
        summary = trainer.logger_manager.summary()
        assert summary["mlflow"]["spooled"] > 0 and summary["mlflow"]["replayed"] == summary["mlflow"]["spooled"]
        assert summary["mlflow"]["pending"] == 0 and all(c["lost"] == 0 for c in summary.values())
        assert all(summary[b]["spooled"] == 0 for b in ("tensorboard", "csv", "wandb"))  # the others never noticed
        run = assert_mlflow_holds_the_csv(uri, mlf.run_id, csv.log_dir)
        assert run.info.status == "FINISHED"
        # the others are complete: TensorBoard and W&B hold every point the CSV holds
        ref = csv_scalars(csv.log_dir)
        tbs = tensorboard_scalars(tb.log_dir)
        assert all(len(tbs[k]) == len(ref[k]) for k in ref)
        trainer.logger_manager.close()  # finishes the W&B run
        wrun = WandbRun(Path(wb.experiment.dir).parent)
        assert wrun.exit_code == 0 and len([r for r in wrun.history if "val/loss" in r]) == EPOCHS
        # one warning per kind of failure, not one per step; and one when it answers again
        failed = [str(w.message) for w in caught if "failed on" in str(w.message)]
        assert failed and len(failed) == len(set(m.split(" (")[0] for m in failed)), failed
        assert any("answers again" in str(w.message) for w in caught)
        out = capsys.readouterr().out
        assert "delivery report" in out and "mlflow" in out
        spool = Path(csv.log_dir) / "spool" / "mlflow.jsonl"
        assert spool.exists()  # kept in the run's folder, with what was replayed marked
    finally:
        stop_mlflow_server(outage.proc)


def test_server_back_only_after_the_run_then_autotimm_replay(tmp_path, workdir, capsys, monkeypatch):
    trainer, outage, uri, caught = fit_through_outage(tmp_path, up=None, monkeypatch=monkeypatch)  # down until the end
    tb, csv, wb, mlf = trainer.logger_manager.loggers
    summary = trainer.logger_manager.summary()["mlflow"]
    assert summary["pending"] > 0 and summary["lost"] == 0
    spool = Path(csv.log_dir).resolve() / "spool" / "mlflow.jsonl"
    out = capsys.readouterr().out
    assert f"autotimm replay {spool}" in out  # the report says how to send them
    outage.proc = start_mlflow_server(tmp_path / "server", uri.rsplit(":", 1)[1])
    try:
        done = subprocess.run([str(Path(sys.executable).parent / "autotimm"), "replay", str(spool)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"{summary['pending']} events replayed" in done.stdout
        run = assert_mlflow_holds_the_csv(uri, mlf.run_id, csv.log_dir)
        assert run.info.status == "FINISHED"  # the spooled finalize was replayed too
        again = subprocess.run([str(Path(sys.executable).parent / "autotimm"), "replay", str(spool)],
                               capture_output=True, text=True, timeout=300)
        assert again.returncode == 0 and "0 events replayed" in again.stdout  # nothing is sent twice
    finally:
        stop_mlflow_server(outage.proc)


class LostReplies(ThreadingHTTPServer):
    """A loopback proxy in front of a real MLflow server that, `times` times, hands a `log-batch` request holding `key`
    to the server and then drops the connection without its answer: the server stored the points, the client never
    hears so (a reset connection, a proxy timing out, a server killed between its commit and its reply)."""
    daemon_threads = True
    def __init__(self, upstream_port, key, times=1):
        self.upstream, self.key, self.left, self.dropped = upstream_port, key.encode(), times, 0
        super().__init__(("127.0.0.1", 0), _Forward)
        threading.Thread(target=self.serve_forever, daemon=True).start()
    @property
    def uri(self): return f"http://127.0.0.1:{self.server_address[1]}"
    def stop(self): self.shutdown(); self.server_close()

class _Forward(BaseHTTPRequestHandler):
    def _forward(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        up = http.client.HTTPConnection("127.0.0.1", self.server.upstream, timeout=60)
        up.request(self.command, self.path, body, {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")})
        answer = up.getresponse()
        data, status, headers = answer.read(), answer.status, answer.getheaders()
        up.close()
        if self.path.endswith("/runs/log-batch") and self.server.key in body and self.server.left > 0:
            self.server.left -= 1; self.server.dropped += 1
            self.close_connection = True
            return  # the server answered; the answer is lost
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"): self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward
    def log_message(self, *args): pass


def test_an_answer_lost_after_the_server_stored_the_points_is_no_duplicate(tmp_path, workdir, monkeypatch):
    """The request reached MLflow and was stored, its answer never came back: the event is spooled and replayed, and
    MLflow holds each point once (the replay sends the first attempt's time, so the server sees the same point)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # what MLflow's own retry would hide: autotimm's replay
    root, port = tmp_path / "server", free_port()
    root.mkdir()
    proc = start_mlflow_server(root, port)
    proxy = LostReplies(port, "val/accuracy", times=2)
    try:
        trainer = AutoTrainer(max_epochs=EPOCHS, enable_progress_bar=False, limit_train_batches=6, limit_val_batches=3,
                              logger=[LoggerConfig("csv", {"save_dir": "logs"}),
                                      LoggerConfig("mlflow", {"experiment_name": "lost", "tracking_uri": proxy.uri})])
        for lg in trainer.logger_manager.loggers: lg._delivery.retry_interval = 0.5
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BackendWarning)
            trainer.fit(model(), datamodule=data())
        csv, mlf = trainer.logger_manager.loggers
        summary = trainer.logger_manager.summary()["mlflow"]
        assert proxy.dropped == 2  # two answers were lost ...
        assert summary["spooled"] > 0 and summary["replayed"] == summary["spooled"] and summary["lost"] == 0  # ... and replayed
        assert_mlflow_holds_the_csv(f"http://127.0.0.1:{port}", mlf.run_id, csv.log_dir)  # each point once
    finally:
        proxy.stop()
        stop_mlflow_server(proc)


class ExplodingBackend(Backend):
    "A backend whose every call fails: its logger raises, and so does storing an image or a file."
    name, logger_class = "exploding", "Exploding"
    params = (Param("save_dir", (str,)), Param("name", (str,)))
    def build(self, params): return Exploding(**params)
    def log_file(self, *a): raise ConnectionError("backend exploded")


class FlakyBackend(Backend):
    "Lightning's CSV logger whose run cannot start while `FlakyCSV.down` is True."
    name, logger_class, run_name_param, versioned = "flakycsv", "FlakyCSV", "version", True
    params = (Param("save_dir", (str,), required=True), Param("version", (str, int)))
    def build(self, params): return FlakyCSV(**params)
    def log_file(self, logger, *a): return get_backend("csv").log_file(logger, *a)


class Exploding(Logger):
    "A fake backend, only to raise: every call fails."
    def __init__(self, **params): super().__init__(); self.params = params
    @property
    def name(self): return "exploding"
    @property
    def version(self): return 0
    @property
    def experiment(self): raise ConnectionError("backend exploded")
    def log_metrics(self, metrics, step=None): raise ConnectionError("backend exploded")
    def log_hyperparams(self, params, *args, **kwargs): raise ConnectionError("backend exploded")
    def finalize(self, status): raise ConnectionError("backend exploded")


@pytest.fixture
def exploding_backend():
    register_backend(ExplodingBackend())
    yield
    unregister_backend("exploding")


def test_a_backend_raising_on_every_call(exploding_backend, workdir, capsys):
    ref = AutoTrainer(max_epochs=2, enable_progress_bar=False, limit_train_batches=5, logger=[
        LoggerConfig("csv", {"save_dir": "ref"})])
    ref.fit(model(), datamodule=data())
    configs = four_backends(None)[:3] + [LoggerConfig("mlflow", {"experiment_name": "iso", "save_dir": "mlruns"}),
                                         LoggerConfig("exploding", {})]
    trainer = AutoTrainer(max_epochs=2, enable_progress_bar=False, limit_train_batches=5, logger=configs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model(), datamodule=data())
    assert trainer.current_epoch == 2
    summary = trainer.logger_manager.summary()
    bad = summary.pop("exploding")
    assert bad["delivered"] == 0 and bad["spooled"] > 0 and bad["pending"] == bad["spooled"] and bad["lost"] == 0
    assert all(c["spooled"] == 0 and c["lost"] == 0 and c["delivered"] > 0 for c in summary.values())
    # the others are complete: each holds as many points per key as a run without the broken backend
    tb, csv, wb, mlf, _ = trainer.logger_manager.loggers
    want = {k: len(v) for k, v in csv_scalars(ref.loggers[0].log_dir).items()}
    assert {k: len(v) for k, v in csv_scalars(csv.log_dir).items()} == want
    assert {k: len(tensorboard_scalars(tb.log_dir)[k]) for k in want} == want
    assert {k: len(v) for k, v in mlflow_scalars(mlf.experiment, mlf.run_id).items() if k in want} == want
    wandb_dir = Path(wb.experiment.dir).parent
    trainer.logger_manager.close()  # finishes the W&B run
    assert WandbRun(wandb_dir).exit_code == 0
    # warned once per kind of failure, never once per step
    msgs = [str(w.message) for w in caught if issubclass(w.category, BackendWarning)]
    assert 0 < len(msgs) <= 6 and all("exploding" in m for m in msgs), msgs
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.strip().startswith("exploding "))
    assert line.split()[1:7] == ["0", str(bad["spooled"]), "0", str(bad["spooled"]), "0", "0"]  # ..., lost, rejected
    assert (Path(csv.log_dir) / "spool" / "exploding.jsonl").exists()


def test_strict_makes_a_failure_fatal_and_keeps_what_was_logged(exploding_backend, workdir):
    configs = [LoggerConfig("csv", {"save_dir": "logs"}), LoggerConfig("exploding", {}, strict=True)]
    trainer = AutoTrainer(max_epochs=1, enable_progress_bar=False, limit_train_batches=3, logger=configs)
    with pytest.raises(BackendError, match="strict=True"):
        trainer.fit(model(), datamodule=data())
    assert trainer.global_step == 0  # it failed as the run started, before any training step
    trainer = AutoTrainer(max_epochs=1, enable_progress_bar=False, limit_train_batches=3,
                          logger=LoggerManager([LoggerConfig("csv", {"save_dir": "logs"}), LoggerConfig("exploding", {})], strict=True))
    with pytest.raises(BackendError, match="exploding"):
        trainer.fit(model(), datamodule=data())


class FlakyCSV(CSVLogger):
    "Lightning's CSV logger with an injected fault: its run cannot start while `down` is True."
    down = True

    @property
    def experiment(self):
        if FlakyCSV.down: raise ConnectionError("cannot reach the backend")
        return super().experiment


class BackAt(Callback):
    def __init__(self, epoch): self.epoch, self.held = epoch, None
    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            self.held = [lightning_class(l).__name__ for l in trainer.loggers]
            FlakyCSV.down = False


def test_a_backend_that_cannot_start_is_stood_in_for_then_gets_everything(workdir):
    csv = get_backend("csv")
    register_backend(FlakyBackend())
    FlakyCSV.down = True
    try:
        back = BackAt(2)
        trainer = AutoTrainer(max_epochs=3, enable_progress_bar=False, limit_train_batches=5, callbacks=[back],
                              logger=LoggerManager([LoggerConfig("csv", {"save_dir": "logs"}),
                                                    LoggerConfig("flakycsv", {"save_dir": "flaky"})], retry_interval=0.2))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer.fit(model(), datamodule=data())
    finally:
        unregister_backend("flakycsv")
    real, flaky = trainer.logger_manager.loggers
    assert back.held == ["CSVLogger", "StandIn"] and isinstance(flaky, FlakyCSV)  # the manager keeps the real logger
    assert any("failed on starting its run" in str(w.message) for w in caught)
    s = trainer.logger_manager.summary()["flakycsv"]
    assert s["spooled"] > 0 and s["replayed"] == s["spooled"] and s["pending"] == 0 and s["lost"] == 0
    assert csv_scalars(flaky.log_dir) == csv_scalars(real.log_dir)  # every point, at its step, with its value
    assert sorted(p.name for p in Path(flaky.log_dir).glob("val_confusion_matrix_epoch_*.png")) == [
        f"val_confusion_matrix_epoch_{e:03d}.png" for e in range(3)]


def test_a_plain_lightning_trainer_gets_the_same_isolation(exploding_backend, workdir):
    import pytorch_lightning as pl
    from autotimm.trainer import start_loggers
    manager = LoggerManager([LoggerConfig("csv", {"save_dir": "logs"}), LoggerConfig("exploding", {})])
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=3, enable_progress_bar=False, logger=start_loggers(manager.loggers))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BackendWarning)
        trainer.fit(model(), datamodule=data())
    assert trainer.current_epoch == 1 and [lightning_class(l).__name__ for l in trainer.loggers] == ["CSVLogger", "StandIn"]
    summary = manager.summary()
    assert summary["csv"]["delivered"] > 0 and summary["exploding"]["pending"] == summary["exploding"]["spooled"] > 0
    assert "val/loss" in csv_scalars(manager[0].log_dir)


def test_checkpoints_never_land_in_a_folder_named_after_a_stand_in(exploding_backend, workdir):
    "No backend can start: the checkpoints still go to the run's own folder, with AutoTrainer and with plain Lightning."
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ModelCheckpoint
    from autotimm.trainer import start_loggers
    trainer = AutoTrainer(max_epochs=2, enable_progress_bar=False, limit_train_batches=3, checkpoint_monitor="val/loss",
                          logger=[LoggerConfig("exploding", {"save_dir": "boom"})])
    manager = LoggerManager([LoggerConfig("exploding", {"save_dir": "alone"})])
    plain = pl.Trainer(max_epochs=1, limit_train_batches=3, enable_progress_bar=False, logger=start_loggers(manager.loggers),
                       callbacks=[ModelCheckpoint(save_last=True)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BackendWarning)
        trainer.fit(model(), datamodule=data())
        plain.fit(model(), datamodule=data())
    assert [lightning_class(l).__name__ for l in plain.loggers] == ["StandIn"]
    first, second = trainer.logger_manager.run_folder(), manager.run_folder()
    assert first == (workdir/"boom"/trainer.run_name).resolve() and second == (workdir/"alone"/manager.run_name).resolve()
    ckpts = sorted(p.resolve() for p in workdir.rglob("*.ckpt"))
    assert {p.parent for p in ckpts} == {first/"checkpoints", second/"checkpoints"}, ckpts
    assert {"last.ckpt"} < {p.name for p in ckpts if p.parent == first/"checkpoints"}  # the best one and the last
    assert "last.ckpt" in {p.name for p in ckpts if p.parent == second/"checkpoints"}
    assert not [p for p in workdir.rglob("*") if "starting" in p.name]
