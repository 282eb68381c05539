"""After a run closes, the environment is as it was: every variable autotimm (or MLflow on its behalf) set during the
run is put back, a variable the user set stays, and the user's own later MLflow calls go to the user's own store."""
import os

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from autotimm import AutoTrainer, LoggerConfig
from autotimm.backends import mlflow_local_uri
from helpers import digits, tiny_classifier

KW = dict(enable_progress_bar=False, enable_model_summary=False, limit_train_batches=3, limit_val_batches=2, live=False)


@pytest.fixture
def users_own_mlflow(workdir, monkeypatch):
    "A user whose MLflow calls go to their own store through MLFLOW_TRACKING_URI (and a setting of their own)."
    mlflow.set_tracking_uri(None)  # no URI left by an earlier test
    uri = mlflow_local_uri(workdir / "mine")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "77")
    yield uri
    mlflow.set_tracking_uri(None)


def check_the_users_mlflow(uri):
    assert mlflow.get_tracking_uri() == uri
    with mlflow.start_run(run_name="my own run"): mlflow.log_metric("mine", 1.0)
    (run,) = MlflowClient(uri).search_runs([MlflowClient(uri).get_experiment_by_name("Default").experiment_id])
    assert run.info.run_name == "my own run" and run.data.metrics == {"mine": 1.0}


@pytest.mark.parametrize("where", ["local store", "server"])
def test_the_environment_is_put_back_after_fit_and_reapplied_to_train_on(workdir, users_own_mlflow, where, request):
    params = {"experiment_name": "env"}
    if where == "server": params["tracking_uri"] = request.getfixturevalue("mlflow_server")
    else: params["save_dir"] = "mlruns"
    before = dict(os.environ)
    trainer = AutoTrainer(max_epochs=1, logger=[LoggerConfig("csv", {"save_dir": "logs"}), LoggerConfig("mlflow", params)], **KW)
    trainer.fit(tiny_classifier(), datamodule=digits())
    assert dict(os.environ) == before
    trainer.fit_loop.max_epochs = 2  # trains on in the same run: what autotimm set is set again, then put back
    trainer.fit(tiny_classifier(), datamodule=digits())
    assert dict(os.environ) == before
    trainer.logger_manager.close()
    assert dict(os.environ) == before
    check_the_users_mlflow(users_own_mlflow)
    assert "AUTOTIMM_RUN_NAME" not in os.environ and os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "77"
