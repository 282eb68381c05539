"""Run identity across processes: two runs started together on one folder never share a run, and a script re-run with a
fixed `run_name` never rewrites the first run; both checked with each backend's own reader."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

from autotimm.backends import mlflow_local_uri
from readers import WandbRun, csv_metrics, tensorboard_scalars

SCRIPT = Path(__file__).parent / "parallel_run.py"


def start(root, *args, **popen):
    "One `parallel_run.py` process, its output piped."
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent.parent), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(SCRIPT), str(root), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, **popen)


def finish(procs, timeout=400):
    "Wait for every process (killing all on timeout: the test then fails); return their `RUN` records."
    outs = []
    try:
        for p in procs: outs.append(p.communicate(timeout=timeout))
    except subprocess.TimeoutExpired:
        for p in procs: p.kill()
        for p in procs: p.communicate()
        raise AssertionError(f"a run did not finish within {timeout} s")
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    return [json.loads(next(l for l in out.splitlines() if l.startswith("RUN "))[4:]) for out, _ in outs]


def no_duplicate_steps(df, key):
    "Each step of `key` in metrics.csv once: two runs interleaved in one file repeat steps."
    steps = df.dropna(subset=[key])["step"].tolist()
    return len(steps) == len(set(steps)) and steps == sorted(steps)


def test_two_processes_started_together_get_two_runs_everywhere(workdir):
    runs = finish([start(workdir), start(workdir)])
    assert len({r["pid"] for r in runs}) == 2
    folders = sorted(p.name for p in (workdir / "logs" / "lightning_logs").iterdir())
    assert folders == ["version_0", "version_1"]
    assert sorted(r["run_name"] for r in runs) == folders
    for r in runs:
        assert r["tb"] == r["csv"] == str(workdir / "logs" / "lightning_logs" / r["run_name"])
        d = Path(r["csv"])
        df = csv_metrics(d)
        assert no_duplicate_steps(df, "train/loss") and no_duplicate_steps(df, "val/loss")
        assert df.dropna(subset=["val/loss"])["epoch"].tolist() == [0, 1]  # one run's two epochs, not four rows
        assert len(list(d.glob("events.out.tfevents.*"))) == 1
        assert len(tensorboard_scalars(d)["val/loss"]) == 2
        assert Path(r["last"]) == d / "checkpoints" / "last.ckpt" and Path(r["last"]).is_file()
        assert json.loads((d / "run_manifest.json").read_text())["run"]["name"] == r["run_name"]
    client = MlflowClient(mlflow_local_uri(workdir / "mlruns"))
    (exp,) = [e for e in client.search_experiments() if e.name == "parallel"]  # one experiment, though both created it
    mruns = client.search_runs([exp.experiment_id])
    assert sorted(m.info.run_id for m in mruns) == sorted(r["mlflow"] for r in runs)
    assert sorted(m.info.run_name for m in mruns) == folders and {m.info.status for m in mruns} == {"FINISHED"}
    for m in mruns: assert len(client.get_metric_history(m.info.run_id, "val/loss")) == 2
    wruns = WandbRun.find(workdir / "wb")
    assert len(wruns) == 2 and sorted(w.dir.name.rsplit("-", 1)[1] for w in wruns) == sorted(r["wandb"] for r in runs)
    assert [len([row for row in w.history if "val/loss" in row]) for w in wruns] == [2, 2]


def test_a_script_rerun_with_a_fixed_run_name_never_rewrites_the_first_run(workdir):
    (first,) = finish([start(workdir, "--run-name", "baseline")])
    d1 = workdir / "logs" / "lightning_logs" / "baseline"
    assert first["run_name"] == "baseline" and first["csv"] == str(d1)
    rows, events = csv_metrics(d1), tensorboard_scalars(d1)
    files = {p.name: p.read_bytes() for p in d1.iterdir() if p.is_file()}
    (second,) = finish([start(workdir, "--run-name", "baseline")])  # the same script, run again
    d2 = workdir / "logs" / "lightning_logs" / "baseline-2"
    assert second["run_name"] == "baseline-2" and second["csv"] == second["tb"] == str(d2)
    pd.testing.assert_frame_equal(csv_metrics(d1), rows)  # the first run's rows, as they were
    assert tensorboard_scalars(d1) == events and len(list(d1.glob("events.out.tfevents.*"))) == 1
    assert {p.name: p.read_bytes() for p in d1.iterdir() if p.is_file()} == files  # manifest, hparams.yaml, matrices
    assert len(csv_metrics(d2).dropna(subset=["val/loss"])) == 2 and Path(second["last"]).parent == d2 / "checkpoints"
    client = MlflowClient(mlflow_local_uri(workdir / "mlruns"))
    names = sorted(m.info.run_name for m in client.search_runs([e.experiment_id for e in client.search_experiments()]))
    assert names == ["baseline", "baseline-2"]
    assert len(WandbRun.find(workdir / "wb")) == 2


def test_processes_building_their_loggers_at_the_same_instant_share_a_fresh_mlflow_store(workdir):
    "MLflow creates a fresh sqlite store's tables without a lock: processes starting at one instant must not race on it."
    at = time.time() + 25  # after every process has imported torch, Lightning and MLflow
    runs = finish([start(workdir, "--epochs", "1", "--at", str(at)) for _ in range(3)])
    assert sorted(r["run_name"] for r in runs) == ["version_0", "version_1", "version_2"]
    client = MlflowClient(mlflow_local_uri(workdir / "mlruns"))
    (exp,) = [e for e in client.search_experiments() if e.name == "parallel"]  # one experiment, not one per process
    mruns = client.search_runs([exp.experiment_id])
    assert sorted(m.info.run_id for m in mruns) == sorted(r["mlflow"] for r in runs)
    assert {m.info.status for m in mruns} == {"FINISHED"} and not list(workdir.rglob("spool"))  # every event delivered
