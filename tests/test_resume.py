"""`fit(..., ckpt_path=...)` continues the same run in every backend: the same TensorBoard/CSV version folder, the
same MLflow run, the same W&B run id; steps go on from the checkpoint's and no point is dropped."""
import re
import time
from pathlib import Path

import torch
from mlflow.tracking import MlflowClient

from autotimm import AutoTrainer, LoggerConfig
from autotimm.backends import mlflow_local_uri
from helpers import digits as data, tiny_classifier as model
from readers import WandbRun, csv_scalars, mlflow_scalars, tensorboard_scalars

KW = dict(enable_progress_bar=False, limit_train_batches=5, limit_val_batches=3, checkpoint_monitor="val/accuracy")


CONFIGS = [LoggerConfig("tensorboard", {"save_dir": "logs"}), LoggerConfig("csv", {"save_dir": "logs"}),
           LoggerConfig("wandb", {"project": "resume", "offline": True, "save_dir": "wandb"}),
           LoggerConfig("mlflow", {"experiment_name": "resume", "save_dir": "mlruns"})]


def increasing(points): return all(a[0] < b[0] for a, b in zip(points, points[1:]))


def test_resume_from_a_checkpoint_continues_the_same_run_everywhere(workdir):
    straight = AutoTrainer(max_epochs=4, logger=[LoggerConfig("csv", {"save_dir": "straight"})], **KW)
    straight.fit(model(), datamodule=data())
    want = {k: [s for s, _ in v] for k, v in csv_scalars(straight.loggers[0].log_dir).items()}

    first = AutoTrainer(max_epochs=2, logger=CONFIGS, **KW)
    first.fit(model(), datamodule=data())
    tb1, csv1, wb1, mlf1 = first.logger_manager.loggers
    ckpt, wandb_id, wandb_dir1 = first.last_checkpoint, wb1.version, Path(wb1.experiment.dir).parent
    assert Path(ckpt).name == "last.ckpt"  # the latest state, whether or not the last epoch improved val/accuracy
    assert torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"] == 10
    first.logger_manager.close()

    second = AutoTrainer(max_epochs=4, logger=CONFIGS, **KW)  # a new trainer, as after a kernel restart
    second.fit(model(), datamodule=data(), ckpt_path=ckpt)
    tb, csv, wb, mlf = second.logger_manager.loggers
    wandb_dir2 = Path(wb.experiment.dir).parent
    second.logger_manager.close()

    # the same run everywhere
    assert second.run_name == first.run_name == "version_0"
    assert (tb.log_dir, csv.log_dir) == (tb1.log_dir, csv1.log_dir)
    assert sorted(p.name for p in Path("logs/lightning_logs").iterdir()) == ["version_0"]
    assert mlf.run_id == mlf1.run_id and wb.version == wandb_id
    client = MlflowClient(mlflow_local_uri("mlruns"))
    runs = client.search_runs([mlf.experiment_id])
    assert [r.info.run_id for r in runs] == [mlf.run_id] and runs[0].info.status == "FINISHED"
    # every point of a straight 4-epoch run, at the same steps, increasing, in CSV, TensorBoard and MLflow
    got = csv_scalars(csv.log_dir)
    assert {k: [s for s, _ in v] for k, v in got.items()} == want
    tbs = tensorboard_scalars(tb.log_dir)
    assert {k: [s for s, _ in tbs[k]] for k in want} == want
    mls = mlflow_scalars(client, mlf.run_id)
    assert {k: mls[k] for k in want} == {k: got[k] for k in want}  # same points as the CSV
    assert all(increasing(v) for v in got.values())
    # W&B: the resumed part goes on from where the first stopped, under the same run id
    h1, h2 = WandbRun(wandb_dir1).history, WandbRun(wandb_dir2).history
    # W&B names a run's folder offline-run-<time>-<id>, adding -1, -2... when a resume starts within the same second
    assert re.fullmatch(rf"offline-run-\d{{8}}_\d{{6}}-{wandb_id}(-\d+)?", wandb_dir2.name) and wandb_dir1 != wandb_dir2
    step = lambda h, key: [r["trainer/global_step"] for r in h if key in r]  # Lightning's step, as W&B stores it
    assert len(step(h1, "val/loss")) == 2 and len(step(h2, "val/loss")) == 2
    assert step(h1, "val/loss") + step(h2, "val/loss") == [s for s, _ in got["val/loss"]]
    assert max(step(h1, "train/loss")) < min(step(h2, "train/loss"))
    # the confusion matrices of all four epochs sit in the one version folder
    assert sorted(p.name for p in Path(csv.log_dir).glob("val_confusion_matrix_epoch_*.png")) == [
        f"val_confusion_matrix_epoch_{e:03d}.png" for e in range(4)]


def test_a_run_resumed_within_the_same_second_is_read_as_one(workdir):
    "W&B names the second folder of a run resumed within the same second `...-<id>-1`: the reader still joins both parts."
    import wandb
    from autotimm import load_run
    from autotimm.backends import get_backend
    wb = str(Path("wb").resolve())  # absolute: W&B's service keeps the working directory it started in
    first = wandb.init(project="same-second", dir=wb, mode="offline", id="samesec1")
    for s in range(3): first.log({"x": float(s)}, step=s)
    first.finish()
    # the setting wandb.init sets itself when the folder's name is taken: the same run id, the name with a -1
    second = wandb.init(project="same-second", dir=wb, mode="offline", id="samesec1", resume="allow",
                        settings=wandb.Settings(x_sync_dir_suffix="1"))
    for s in range(3, 6): second.log({"x": float(s)}, step=s)
    second.finish()
    deadline = time.monotonic() + 60  # W&B's service makes the folder and writes the run file behind the calls
    while time.monotonic() < deadline and not (len(list(Path("wb/wandb").glob("offline-run-*/*.wandb"))) == 2
                                               and len(load_run("wb").scalars("x")) == 6): time.sleep(0.2)
    folders = sorted(Path("wb/wandb").glob("offline-run-*"))
    assert [f.name.endswith("-samesec1-1") for f in folders] == [False, True], [f.name for f in folders]
    (only,) = get_backend("wandb").find(Path("wb"))  # one run, not a run "1"
    for location in (only, folders[1], "wb"):
        assert load_run(location).scalars("x") == [(s, float(s)) for s in range(6)], location
