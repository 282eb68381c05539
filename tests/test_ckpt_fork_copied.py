"""Continue or fork is decided from what a checkpoint records (its run and its step against the run's newest
checkpoint), wherever the file was copied or renamed: an earlier epoch's checkpoint copied out of `checkpoints/`
forks a new run and leaves the original as it was; a copy of the newest state continues the run."""
import shutil

import pandas as pd
from mlflow.tracking import MlflowClient
from pytorch_lightning.callbacks import ModelCheckpoint

from autotimm import AutoTrainer, LoggerConfig
from autotimm.backends import mlflow_local_uri
from helpers import classifier as model, digits
from readers import csv_metrics, mlflow_scalars, tensorboard_scalars

CONFIGS = [LoggerConfig("csv", {"save_dir": "logs"}), LoggerConfig("tensorboard", {"save_dir": "logs"}),
           LoggerConfig("mlflow", {"experiment_name": "copied", "save_dir": "mlruns"})]
KW = dict(enable_progress_bar=False, enable_model_summary=False, limit_train_batches=5, limit_val_batches=2,
          checkpoint_monitor="val/accuracy", live=False)


def test_a_copied_or_renamed_checkpoint_forks_from_an_earlier_step_and_continues_from_the_newest(workdir):
    first = AutoTrainer(max_epochs=3, logger=CONFIGS, **KW,
                        callbacks=[ModelCheckpoint(monitor="step", mode="max", save_top_k=-1, filename="every-{epoch}")])
    first.fit(model(), datamodule=digits())
    parent_run = first.logger_manager.get_logger_by_backend("mlflow").run_id
    first.logger_manager.close()
    d1 = workdir / "logs" / "lightning_logs" / "version_0"
    client = MlflowClient(mlflow_local_uri("mlruns"))
    before = (csv_metrics(d1), tensorboard_scalars(d1), mlflow_scalars(client, parent_run))
    assert len(before[0]) > 0

    # epoch 1 (step 10 of 15) copied out of the run's folder under another name: nothing beside it says it is old
    (workdir / "elsewhere").mkdir()
    copied = shutil.copy(d1 / "checkpoints" / "every-epoch=1.ckpt", workdir / "elsewhere" / "my-model.ckpt")
    second = AutoTrainer(max_epochs=3, logger=CONFIGS, **KW)
    second.fit(model(), datamodule=digits(), ckpt_path=copied)
    assert second.run_name == "version_1"  # forked: a new run
    assert second.logger_manager.get_logger_by_backend("mlflow").run_id != parent_run
    second.logger_manager.close()
    after = (csv_metrics(d1), tensorboard_scalars(d1), mlflow_scalars(client, parent_run))
    pd.testing.assert_frame_equal(after[0], before[0])  # the parent run exactly as it was, in every backend
    assert after[1:] == before[1:]
    assert csv_metrics(workdir / "logs" / "lightning_logs" / "version_1").dropna(subset=["val/loss"])["epoch"].tolist() == [2]

    # the newest state (last.ckpt, step 15) copied and renamed: the same run goes on
    newest = shutil.copy(d1 / "checkpoints" / "last.ckpt", workdir / "elsewhere" / "newest.ckpt")
    third = AutoTrainer(max_epochs=4, logger=CONFIGS, **KW)
    third.fit(model(), datamodule=digits(), ckpt_path=newest)
    assert third.run_name == "version_0"
    assert third.logger_manager.get_logger_by_backend("mlflow").run_id == parent_run
    third.logger_manager.close()
    assert sorted(p.name for p in (workdir / "logs" / "lightning_logs").iterdir()) == ["version_0", "version_1"]
    assert csv_metrics(d1).dropna(subset=["val/loss"])["epoch"].tolist() == [0, 1, 2, 3]


def test_a_checkpoint_the_disk_could_not_take_is_not_the_runs_newest(workdir):
    "Epoch 1's checkpoints fail (a full disk, injected at the file write), training goes on: epoch 0's state is still the newest, so it continues."
    import errno
    from pytorch_lightning import Callback
    class DiskFullAtEpoch1(Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch != 1: return
            io = trainer.strategy.checkpoint_io  # the file write, after the checkpoint's contents were gathered
            save = io.save_checkpoint
            def full(checkpoint, path, *a, **k):
                if trainer.current_epoch == 1: raise OSError(errno.ENOSPC, "No space left on device")
                return save(checkpoint, path, *a, **k)
            io.save_checkpoint = full
    first = AutoTrainer(max_epochs=2, logger=CONFIGS[:1], callbacks=[DiskFullAtEpoch1()], **KW)
    first.fit(model(), datamodule=digits())
    last = workdir / "logs" / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    import torch
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 5  # epoch 0's, kept
    second = AutoTrainer(max_epochs=2, logger=CONFIGS[:1], **KW)
    second.fit(model(), datamodule=digits(), ckpt_path=shutil.copy(last, workdir / "copy.ckpt"))
    assert second.run_name == "version_0"  # the run's newest state: continued, not forked
