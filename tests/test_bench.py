"""The benchmarks run from a clean checkout (smoke runs; the figures in the README come from full runs)."""
import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[1] / "bench"


def test_suite_quick(workdir):
    r = subprocess.run([sys.executable, str(BENCH / "suite.py"), "--quick", "--json", "out.json"], capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((workdir / "out.json").read_text())
    assert set(res["fit_s"]) == {"A", "B", "C"} and set(res["ratios"]) == {"fit_C/A", "fit_C/B", "epoch_C/A", "epoch_C/B"}
    assert set(res["confusion_matrix_s"]) >= {"10_typical", "100_typical", "1000_typical"}
    assert res["import_s"]["import_autotimm_s"] < res["import_s"]["import_pytorch_lightning_timm_s"]
    assert "C/B" in r.stdout


def test_gpu_check_dry_run(workdir):
    r = subprocess.run([sys.executable, str(BENCH / "gpu.py"), "--dry-run", "--json", "gpu.json"], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((workdir / "gpu.json").read_text())
    assert res["dry_run"] and res["images_per_s"]["A"] > 0 and res["images_per_s"]["C"] > 0
