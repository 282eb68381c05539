"""Two "nodes" on loopback (one process each, `num_nodes=2`, DDP on the CPU) sharing one folder, as torchrun or SLURM
start them: both train and exit, and every backend holds exactly one run; a check that fails before training fails
both nodes at once with the same message instead of leaving one waiting inside DDP."""
import os
import re
import subprocess
import sys
from pathlib import Path

from mlflow.tracking import MlflowClient

from autotimm.backends import mlflow_local_uri
from helpers import free_port
from readers import WandbRun, csv_metrics

SCRIPT = Path(__file__).parent / "parallel_run.py"
TIMEOUT = 300


def start_nodes(root, *args, cwds=None):
    "Both nodes at once, as a launcher starts them: MASTER_ADDR/PORT, NODE_RANK, WORLD_SIZE; nothing else differs."
    port = free_port()
    base = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2",
            "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent.parent), os.environ.get("PYTHONPATH", "")])}
    base.pop("AUTOTIMM_RUN_NAME", None)
    procs = []
    for rank in (0, 1):  # output to files: a full pipe would stall a node as surely as a hang
        out, err = (open(Path(root) / f"node{rank}.{s}", "w+") for s in ("out", "err"))
        procs.append(subprocess.Popen([sys.executable, str(SCRIPT), str(root), "--nodes", "2", *args], stdout=out, stderr=err,
                                      text=True, env={**base, "NODE_RANK": str(rank)}, cwd=(cwds or (root, root))[rank]))
        procs[-1].files = (out, err)
    return procs


def _read(p):
    texts = []
    for f in p.files:
        f.seek(0); texts.append(f.read()); f.close()
    return texts


def wait_all(procs, timeout=TIMEOUT):
    "`[(returncode, stdout, stderr)]`; both killed, and the test failed, when one is still running after `timeout` s."
    try:
        for p in procs: p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        for p in procs: p.kill()
        for p in procs: p.wait()
        tails = [_read(p)[1][-2000:] for p in procs]
        raise AssertionError(f"the nodes did not exit within {timeout} s (a hang):\n" + "\n---\n".join(tails))
    return [(p.returncode, *_read(p)) for p in procs]


def last_line(stderr):
    "The error line that ends a traceback, without the `[rankN]: ` torch puts before each line once DDP has started."
    return re.sub(r"^\[rank\d+\]: ", "", stderr.strip().splitlines()[-1])


def test_two_nodes_with_all_four_backends_make_one_run_in_each(workdir):
    (rc0, out0, err0), (rc1, out1, err1) = wait_all(start_nodes(workdir))
    assert rc0 == 0 and rc1 == 0, f"node 0:\n{err0[-3000:]}\nnode 1:\n{err1[-3000:]}"
    assert "RUN " in out0 and "RUN " not in out1  # rank zero reports
    assert [p.name for p in (workdir / "logs" / "lightning_logs").iterdir()] == ["version_0"]
    run = workdir / "logs" / "lightning_logs" / "version_0"
    df = csv_metrics(run)
    assert df.dropna(subset=["val/loss"])["epoch"].tolist() == [0, 1]
    assert len(list(run.glob("events.out.tfevents.*"))) == 1
    client = MlflowClient(mlflow_local_uri(workdir / "mlruns"))
    (exp,) = [e for e in client.search_experiments() if e.name == "parallel"]
    (mrun,) = client.search_runs([exp.experiment_id])
    assert mrun.info.run_name == "version_0" and mrun.info.status == "FINISHED"
    assert len(client.get_metric_history(mrun.info.run_id, "val/loss")) == 2
    (w,) = WandbRun.find(workdir / "wb")
    assert len([row for row in w.history if "val/loss" in row]) == 2
    # nothing written on behalf of node 1 anywhere: no second folder, store or spool
    assert not list(workdir.rglob("spool")) and [p.name for p in (workdir / "mlruns").glob("*.db")] == ["mlflow.db"]


def test_a_check_failing_before_training_fails_both_nodes_fast_with_one_message(workdir):
    (workdir / "afile").write_text("not a folder")  # save_dir inside a file: no folder can be made there
    results = wait_all(start_nodes(workdir, "--save-dir", str(workdir / "afile" / "logs")), timeout=120)
    want = f"save_dir '{workdir / 'afile' / 'logs'}' is not writable"
    for rank, (rc, out, err) in enumerate(results):
        assert rc != 0, f"node {rank} exited 0"
        assert want in last_line(err), f"node {rank}:\n{err[-2000:]}"
    assert last_line(results[0][2]) == last_line(results[1][2])


def test_a_check_failing_on_node_zero_only_fails_both_nodes_fast(workdir):
    "Each node runs in its own folder, as on two machines: node 0 cannot write `save_dir`, node 1 can."
    a, b = workdir / "node0", workdir / "node1"
    a.mkdir(); (a / "afile").write_text("not a folder")
    (b / "afile").mkdir(parents=True)
    results = wait_all(start_nodes(workdir, "--save-dir", "afile/logs", cwds=(a, b)), timeout=150)
    for rank, (rc, out, err) in enumerate(results):
        assert rc != 0, f"node {rank} exited 0"
        assert last_line(err).startswith("PermissionError: LoggerConfig('tensorboard'): save_dir 'afile/logs' is not writable"), \
            f"node {rank}:\n{err[-2000:]}"


def test_only_rank_zero_creates_the_mlflow_store(workdir):
    "Another node's rank builds its loggers too, but never opens the shared local store (no lock spans two machines)."
    code = ("from autotimm import LoggerManager, LoggerConfig\n"
            "m = LoggerManager([LoggerConfig('mlflow', {'experiment_name': 'e', 'save_dir': 'mlruns'})])\n")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "NODE_RANK", "AUTOTIMM_RUN_NAME")}
    other = subprocess.run([sys.executable, "-c", code], env={**env, "NODE_RANK": "1"}, capture_output=True, text=True, timeout=TIMEOUT)
    assert other.returncode == 0, other.stderr[-2000:]
    assert (workdir/"mlruns").is_dir() and not list((workdir/"mlruns").iterdir())  # no mlflow.db: no tables made
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert first.returncode == 0 and (workdir/"mlruns"/"mlflow.db").is_file(), first.stderr[-2000:]
