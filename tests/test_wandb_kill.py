"""`kill -9` of W&B's service process (`wandb-core`) mid-run: W&B had not written what it was handed yet (it writes
its run file in blocks), so autotimm spools what the run file lacks and replays it into a new service at the run's
end; the W&B run then holds every point the CSV run holds, once, and ends finished."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from readers import WandbRun, csv_scalars

from autotimm import load_run

HERE = Path(__file__).parent


@pytest.mark.parametrize("at", [30, -1], ids=["mid-run", "after-the-last-step"])
def test_kill_9_of_wandb_service_loses_nothing(workdir, at):
    "`at`: the step it dies at, or -1: when training ends, before the run is closed (`close` then replays)."
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}  # its own service: not this process's (which W&B shares)
    done = subprocess.run([sys.executable, str(HERE/"wandb_kill_run.py"), str(workdir), str(at), "2"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0 and "KILLED" in done.stdout, (done.stdout[-2000:], done.stderr[-3000:])
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    w = result["summary"]["wandb"]
    assert w["spooled"] > 0 and w["replayed"] == w["spooled"] and w["pending"] == 0 and w["lost"] == 0, w
    assert any("replayed" in m for m in result["warnings"]), result["warnings"]

    parts = sorted(str(p) for p in (workdir/"wandb").rglob("offline-run-*"))
    assert len(parts) == 2 and len({p.rsplit("-", 1)[-1] for p in parts}) == 1, parts  # the same run id, continued
    wb = WandbRun(parts[0], parts=parts, wait=0).scalars()
    csv = csv_scalars(workdir/"logs/lightning_logs/version_0")
    keys = [k for k in csv if k.startswith(("train/", "val/"))]
    assert "train/loss" in keys and "val/loss" in keys
    for k in keys:  # every point once, at its step, with its value (W&B keeps float32 values as they were logged)
        got, want = sorted(wb[k]), sorted(csv[k])
        assert [s for s, _ in got] == [s for s, _ in want], k
        assert all(abs(a - b) <= 1e-6 * max(1.0, abs(b)) for (_, a), (_, b) in zip(got, want)), k
    steps = [s for s, _ in wb["train/loss"]]
    assert steps == sorted(set(steps)) and len(steps) >= 2*20 - 1  # no duplicate, none missing (about 20 steps an epoch)

    run = load_run(workdir/"wandb")  # the reader joins the two folders: finished, with every point
    assert run.status == "finished"
    assert run.metrics.query("key == 'train/loss'")["step"].tolist() == steps
