"""The main job: `autotimm demo` end to end, as a user runs it."""
import subprocess
import sys
from pathlib import Path

from readers import WandbRun, csv_metrics


def test_demo_runs_and_prints_where_everything_is(workdir):
    r = subprocess.run([sys.executable, "-m", "autotimm", "demo", "--epochs", "2", "--backbone", "test_resnet",
                        "--out", "out", "--no-progress"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout
    assert "autotimm demo: test_resnet on digits, 2 epochs" in out
    for cmd in ("tensorboard --logdir out/tensorboard", "mlflow ui --backend-store-uri sqlite:///", "wandb sync out/wandb/wandb/offline-run-"):
        assert cmd in out, out
    png = Path(out.split("Last confusion matrix: ")[1].split()[0])
    assert png.name == "val_confusion_matrix_epoch_001.png" and png.read_bytes()[:4] == b"\x89PNG"
    df = csv_metrics("out/csv/demo/version_0")
    assert {"train/loss", "val/accuracy", "test/accuracy", "train/grad_norm", "train/weight_norm"} <= set(df.columns)
    assert (workdir / "out/mlruns/mlflow.db").exists() and len(WandbRun.find("out/wandb")) == 1
    assert "test/accuracy" in out
