"""`kill -9` during fit loses at most `flush_logs_every_n_steps` CSV rows (in fact none: Lightning saves the
CSV logger after every logged step), and nothing of what TensorBoard flushed."""
import subprocess
import sys
from pathlib import Path

from readers import csv_scalars

HERE = Path(__file__).parent


def test_kill_9_mid_run_loses_at_most_flush_logs_every_n_steps_rows(workdir):
    kill_at, flush_every = 30, 10  # 30 steps: more than an epoch (20 steps of 64 digits), so epoch rows exist too
    done = subprocess.run([sys.executable, str(HERE / "kill9_run.py"), str(workdir), str(kill_at), str(flush_every)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == -9 and f"KILLING {kill_at}" in done.stdout, done.stderr[-3000:]
    got = csv_scalars(workdir / "logs/lightning_logs/version_0")
    steps = [s for s, _ in got["train/loss_step"]] if "train/loss_step" in got else [s for s, _ in got["train/loss"]]
    assert len(steps) >= kill_at - flush_every  # the promise
    assert steps == list(range(kill_at))  # what Lightning's save-after-every-log gives: every step before the kill
    assert len(got["val/loss"]) == 1  # the first epoch's validation
