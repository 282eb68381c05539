"""A planted secret (a password in the MLflow tracking URI, an API token in a param) appears in no file any backend writes, nor in a repr or a printed summary."""
import os
from pathlib import Path

from autotimm import AutoTrainer, ImageClassifier, ImageDataModule, LoggerConfig, LoggerManager, LoggingConfig, load_run
from helpers import files_containing

SECRET = "Pl4nted-S3cret-9f2c"


def test_planted_secret_is_never_written_or_shown(mlflow_server, workdir, capsys, monkeypatch):
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"): monkeypatch.setenv(name, "")  # restored after
    uri = mlflow_server.replace("http://", f"http://alice:{SECRET}@")  # the server ignores the credentials
    cfgs = [LoggerConfig("mlflow", {"experiment_name": "secrets", "tracking_uri": uri, "tags": {"api_token": SECRET}}),
            LoggerConfig("csv", {"save_dir": "logs"}), LoggerConfig("tensorboard", {"save_dir": "logs"}),
            LoggerConfig("wandb", {"project": "secrets", "save_dir": "wb", "offline": True})]
    for c in cfgs: assert SECRET not in repr(c)
    manager = LoggerManager(cfgs)
    print(manager, cfgs)
    model = ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False,
                            logging_config=LoggingConfig(log_confusion_matrix=True, log_system_metrics=True, system_metrics_interval=0.2))
    trainer = AutoTrainer(max_epochs=1, logger=manager, enable_progress_bar=False, limit_train_batches=4)
    trainer.fit(model, datamodule=ImageDataModule(dataset_name="digits", image_size=16, batch_size=32))
    manager.close()
    run = load_run(mlflow_server, run=manager.run_name)
    print(run, run.location)
    assert SECRET not in run.location
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err
    assert files_containing(workdir, SECRET) == []  # TB, CSV, W&B offline files, checkpoints, manifests
    assert files_containing(mlflow_server.root, SECRET) == []  # the MLflow server's database and artifacts
    assert run.hparams["backends/mlflow/tracking_uri"] == mlflow_server  # credentials moved out of the URI
    assert SECRET not in "".join(os.environ.values())  # and never into the process environment


def test_a_spool_holds_no_secret_and_replay_asks_for_it(workdir, monkeypatch):
    "When a backend fails, its spool (header with the config, events) is written masked; replay asks for the masked value."
    import pytest
    from autotimm.loggers import replay
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"): monkeypatch.setenv(name, "")
    uri = f"http://alice:{SECRET}@127.0.0.1:9"  # nothing contacts it until a log call
    manager = LoggerManager([LoggerConfig("csv", {"save_dir": "logs"}),
                             LoggerConfig("mlflow", {"experiment_name": "e", "tracking_uri": uri, "tags": {"api_token": SECRET}})])
    d = manager.get_logger_by_backend("mlflow")._delivery
    d._spool("log_hyperparams", [{"token": "***", "lr": 0.1}])  # as a failed call would
    assert d.spool.path.parent == Path(manager[0].log_dir).resolve() / "spool"
    assert files_containing(workdir, SECRET) == []
    with pytest.raises(ValueError, match="tracking_uri was masked in the spool"):
        replay(d.spool.path)


class _Recorder:
    "A loopback HTTP server that records the headers of every request and answers 503."
    def __init__(self):
        import http.server, threading
        self.headers = []
        rec = self
        class H(http.server.BaseHTTPRequestHandler):
            def _any(self):
                rec.headers.append(dict(self.headers))
                self.send_response(503); self.end_headers()
            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any
            def log_message(self, *a): pass
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
    def stop(self): self.server.shutdown(); self.server.server_close()


def test_credentials_for_server_a_never_reach_server_b(workdir, monkeypatch):
    "A password in one logger's tracking URI goes with that server's requests only: not to another server, not into os.environ."
    import base64
    from mlflow.tracking import MlflowClient
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"): monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    a, b = _Recorder(), _Recorder()
    try:
        manager = LoggerManager([LoggerConfig("mlflow", {"experiment_name": "e", "tracking_uri": a.uri.replace("http://", f"http://alice:{SECRET}@")})])
        try: _ = manager[0].experiment  # MLflow asks server A for the experiment
        except Exception: pass
        for call in (lambda: MlflowClient(b.uri).search_experiments(),  # then anything else in the process talks to B
                     lambda: LoggerManager([LoggerConfig("mlflow", {"experiment_name": "e", "tracking_uri": b.uri})])[0].experiment,
                     lambda: load_run(b.uri)):
            try: call()
            except Exception: pass
        token = "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode()
        assert a.headers and all(h.get("Authorization") == token for h in a.headers)
        assert b.headers and not any("Authorization" in h for h in b.headers), b.headers
        assert SECRET not in "".join(os.environ.values())
    finally:
        a.stop(); b.stop()


def test_a_password_with_at_or_slash_is_masked_whole_or_refused(workdir, capsys, monkeypatch):
    "The whole user-info of a URI is masked: a password holding '@' never shows in a repr, a spool header or printed output."
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"): monkeypatch.setenv(name, "")
    secret = "p@ss-Pl4nted-9f2c"
    cfg = LoggerConfig("mlflow", {"experiment_name": "e", "tracking_uri": f"http://alice:{secret}@127.0.0.1:9"})
    manager = LoggerManager([LoggerConfig("csv", {"save_dir": "logs"}), cfg])
    d = manager.get_logger_by_backend("mlflow")._delivery
    d._spool("log_metrics", [{"a": 1.0}, 0, 1.7e9])  # as a failed call would: the spool's header holds the config
    print(cfg, manager, manager.where(), d.header())
    shown = capsys.readouterr().out + repr(cfg) + d.spool.path.read_text()
    for part in ("ss-Pl4nted", "alice"): assert part not in shown, part
    assert "http://***@127.0.0.1:9" in shown
    import pytest
    with pytest.raises(ValueError, match="percent-encoded, as %2F") as e:  # a '/' would be read as the start of the path
        LoggerConfig("mlflow", {"experiment_name": "e", "tracking_uri": "http://alice:se/cret-Pl4nted@127.0.0.1:9"})
    assert "cret-Pl4nted" not in str(e.value)
