"""`fit(ckpt_path=<an earlier checkpoint>)` forks: a new run in every backend, linked to its parent by `resumed_from`
(with the hyperparameters that changed), while the parent run stays exactly as it was; `on_resume="continue"` rewrites
the parent run instead, explicitly."""
import json
from pathlib import Path

import pandas as pd
import torch
from mlflow.tracking import MlflowClient
from pytorch_lightning.callbacks import ModelCheckpoint

from autotimm import AutoTrainer, LoggerConfig, load_run
from autotimm.backends import mlflow_local_uri
from helpers import classifier as model, digits
from readers import WandbRun, csv_metrics, mlflow_scalars, tensorboard_scalars

CONFIGS = [LoggerConfig("tensorboard", {"save_dir": "logs"}), LoggerConfig("csv", {"save_dir": "logs"}),
           LoggerConfig("mlflow", {"experiment_name": "fork", "save_dir": "mlruns"}),
           LoggerConfig("wandb", {"project": "fork", "offline": True, "save_dir": "wb"})]
KW = dict(enable_progress_bar=False, limit_train_batches=5, limit_val_batches=2, checkpoint_monitor="val/accuracy", live=False)


def every_epoch(): return ModelCheckpoint(monitor="step", mode="max", save_top_k=-1, filename="every-{epoch}")  # each epoch kept


def snapshot(run_dir, client, run_id):
    "What a user reads of a run: its CSV rows, TensorBoard scalars and MLflow histories."
    return csv_metrics(run_dir), tensorboard_scalars(run_dir), mlflow_scalars(client, run_id)


def test_resume_from_an_earlier_checkpoint_forks_a_new_run_and_leaves_the_parent_as_it_was(workdir):
    first = AutoTrainer(max_epochs=3, logger=CONFIGS, callbacks=[every_epoch()], **KW)
    first.fit(model(), datamodule=digits())
    m1 = first.logger_manager
    parent = {"run_name": m1.run_name, "mlflow": m1.get_logger_by_backend("mlflow").run_id,
              "wandb": m1.get_logger_by_backend("wandb").version}
    m1.close()
    d1 = workdir / "logs" / "lightning_logs" / "version_0"
    epoch1 = d1 / "checkpoints" / "every-epoch=1.ckpt"
    assert torch.load(epoch1, map_location="cpu", weights_only=False)["global_step"] == 10
    client = MlflowClient(mlflow_local_uri("mlruns"))
    before = snapshot(d1, client, parent["mlflow"])
    hparams_before = (d1 / "hparams.yaml").read_text()

    second = AutoTrainer(max_epochs=3, logger=CONFIGS, **KW)  # a new trainer, another learning rate, from epoch 1
    second.fit(model(lr=0.01), datamodule=digits(), ckpt_path=str(epoch1))
    m2 = second.logger_manager
    child = {"run_name": m2.run_name, "mlflow": m2.get_logger_by_backend("mlflow").run_id,
             "wandb": m2.get_logger_by_backend("wandb").version}
    m2.close()

    # a new run everywhere
    assert child["run_name"] == "version_1" and child["mlflow"] != parent["mlflow"] and child["wandb"] != parent["wandb"]
    d2 = workdir / "logs" / "lightning_logs" / "version_1"
    df2 = csv_metrics(d2)
    assert df2.dropna(subset=["val/loss"])["epoch"].tolist() == [2]  # trained on from the checkpoint: epoch 2 only
    assert min(df2.dropna(subset=["train/loss"])["step"]) > 10
    # linked to its parent, with the changed lr, in the manifest and in every backend's hyperparameters
    resumed = json.loads((d2 / "run_manifest.json").read_text())["resumed_from"]
    assert resumed["run_name"] == "version_0" and resumed["step"] == 10 and resumed["mode"] == "fork"
    assert Path(resumed["checkpoint"]) == epoch1 and resumed["changed"] == {"lr": {"from": 1e-3, "to": 0.01}}
    runs = {"csv/tensorboard": load_run(d2), "mlflow": load_run(mlflow_local_uri("mlruns"), run=child["mlflow"])}
    (wdir,) = [w.dir for w in WandbRun.find("wb") if w.dir.name.endswith(child["wandb"])]
    runs["wandb"] = load_run(wdir)
    for name, run in runs.items():
        hp = {k: str(v) for k, v in run.hparams.items()}
        assert hp.get("resumed_from/run_name") == "version_0", (name, sorted(hp))
        assert float(hp.get("resumed_from/changed/lr/to")) == 0.01 and float(hp.get("resumed_from/changed/lr/from")) == 1e-3, name
        assert float(hp["lr"]) == 0.01, name
    assert client.get_run(child["mlflow"]).info.status == "FINISHED"
    # the parent run, exactly as it was
    after = snapshot(d1, client, parent["mlflow"])
    pd.testing.assert_frame_equal(after[0], before[0])
    assert after[1:] == before[1:]
    assert (d1 / "hparams.yaml").read_text() == hparams_before and not (d1 / "resumed_from").exists()
    assert client.get_run(parent["mlflow"]).info.status == "FINISHED"

    # on_resume="continue": the parent run is rewritten from epoch 1, on purpose; no new run
    third = AutoTrainer(max_epochs=3, logger=CONFIGS, on_resume="continue", **KW)
    third.fit(model(lr=0.01), datamodule=digits(), ckpt_path=str(epoch1))
    m3 = third.logger_manager
    assert m3.run_name == "version_0" and m3.get_logger_by_backend("mlflow").run_id == parent["mlflow"]
    m3.close()
    assert sorted(p.name for p in (workdir / "logs" / "lightning_logs").iterdir()) == ["version_0", "version_1"]
    df1 = csv_metrics(d1)
    assert df1.dropna(subset=["val/loss"])["epoch"].tolist() == [0, 1, 2]  # epoch 2 once: rows after the checkpoint replaced
    train_steps = df1.dropna(subset=["train/loss"])["step"].tolist()
    assert len(train_steps) == len(set(train_steps))
    assert json.loads((d1 / "run_manifest.json").read_text())["resumed_from"]["mode"] == "continue"
