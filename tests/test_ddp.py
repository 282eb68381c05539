"""Lightning DDP with 2 CPU processes (gloo): every metric and confusion matrix written once, values aggregated over both ranks, no hang."""
import json
import subprocess
import sys
from pathlib import Path

from mlflow.tracking import MlflowClient

from autotimm.backends import mlflow_local_uri
from readers import WandbRun, csv_metrics, tensorboard_run

VAL_SIZE = 266  # the digits validation split


def test_two_process_ddp_writes_once_and_aggregates(workdir):
    r = subprocess.run([sys.executable, str(Path(__file__).parent / "ddp_run.py"), str(workdir)], capture_output=True,
                       text=True, timeout=600, cwd=workdir)
    assert r.returncode == 0 and "DDP-DONE 2" in r.stdout, r.stderr[-3000:]
    runs = sorted((workdir / "logs" / "lightning_logs").iterdir())
    assert [p.name for p in runs] == ["version_0"]  # one run folder, not one per rank
    run = runs[0]
    df = csv_metrics(run)
    val = df.dropna(subset=["val/loss"])
    assert len(val) == 2 and val["epoch"].tolist() == [0, 1]  # once per epoch, not once per rank
    assert len(df.dropna(subset=["train/loss"])) == len(set(df.dropna(subset=["train/loss"])["step"]))
    # the confusion matrix counts every validation image of both ranks (each rank sees half)
    for e in (0, 1):
        counts = json.loads((run / f"val_confusion_matrix_epoch_{e:03d}.json").read_text())["counts"]
        assert sum(map(sum, counts)) == VAL_SIZE
        # and the logged accuracy is the one over both ranks, the same as the matrix's
        acc = sum(counts[i][i] for i in range(10)) / VAL_SIZE
        assert abs(val["val/accuracy"].iloc[e] - acc) < 1e-6, (val["val/accuracy"].iloc[e], acc)
    tb = tensorboard_run(run)
    assert len(tb.Images("val/confusion_matrix")) == 2 and len(tb.Scalars("val/loss")) == 2
    client = MlflowClient(mlflow_local_uri(workdir / "mlruns"))
    (exp,) = [e for e in client.search_experiments() if e.name == "ddp"]
    (mrun,) = client.search_runs([exp.experiment_id])
    assert len(client.get_metric_history(mrun.info.run_id, "val/loss")) == 2
    (w,) = WandbRun.find(workdir / "wb")
    assert len([row for row in w.history if "val/loss" in row]) == 2
