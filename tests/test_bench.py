"""The benchmarks run from a clean checkout (smoke runs; the figures in the README come from full runs)."""
import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[1] / "bench"


def run_bench(workdir, script, *args, timeout=600):
    "Run `bench/<script> *args --json out.json` in a fresh process; its stdout and its JSON results."
    r = subprocess.run([sys.executable, str(BENCH / script), *args, "--json", "out.json"], capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout, json.loads((workdir / "out.json").read_text())


def test_suite_quick(workdir):
    "The quick run reports the three costs of each variant and their ratios to bare Lightning (timings are not checked)."
    out, res = run_bench(workdir, "suite.py", "--quick", timeout=900)
    variants = {"A", "C", "C_tensorboard"}
    assert set(res["variants"]) == variants and set(res["against_A"]) == variants - {"A"}
    for v, figs in res["variants"].items():
        for cost in ("step", "epoch", "fixed", "startup", "whole"):  # A runs before, between and after the others
            assert figs[cost]["n"] == (3 if v == "A" else 1), (v, cost)
            assert figs[cost]["min"] <= figs[cost]["median"] <= figs[cost]["max"], (v, cost)
        assert 0 < figs["step"]["median"] < figs["epoch"]["median"] < figs["whole"]["median"], v
        assert figs["startup"]["median"] > 0 and figs["fixed"]["median"] > 0, v
    for v, ratios in res["against_A"].items():
        assert set(ratios) >= {"step_ratio", "epoch_ratio", "whole_ratio", "fixed_extra_s", "startup_extra_s"}, v
        assert all(ratios[k]["median"] > 0 for k in ("step_ratio", "epoch_ratio", "whole_ratio")), v
        assert all(ratios["best"][k] > 0 for k in ("step_ratio", "epoch_ratio", "whole_ratio")), v  # fastest rounds
    for v in variants - {"A"}:  # each run is paired with the mean of the A runs beside it
        (base,) = res["beside_A"][v]
        assert any(abs(base["step"] - (a["step"] + b["step"]) / 2) < 1e-12
                   for a, b in zip(res["rounds"]["A"], res["rounds"]["A"][1:])), v
        assert abs(res["against_A"][v]["step_ratio"]["median"] - res["rounds"][v][0]["step"] / base["step"]) < 1e-12, v
    raw = res["raw"]["C"][0]  # the per-round raw timings: epochs, steps per epoch, start-up
    steps = -(-res["config"]["train_images"] // res["config"]["batch_size"])
    assert len(raw["epochs_s"]) == len(raw["steps_s"]) == 2 and all(len(s) == steps for s in raw["steps_s"])
    assert res["config"]["targets"] == {"step": 1.03, "epoch": 1.10, "startup": 1.0, "whole": 1.3}
    assert set(res["confusion_matrix_s"]) >= {"10_typical", "100_typical", "1000_typical"}
    assert res["import_s"]["import_autotimm_s"] < res["import_s"]["import_pytorch_lightning_timm_s"]
    assert "against A" in out and "best rounds" in out and "C_tensorboard" in out and "C against its targets" in out


def test_gpu_check_dry_run(workdir):
    "The GPU check runs on the CPU: images/s, the training thread's CPU time per step and the busy threads per variant."
    out, res = run_bench(workdir, "gpu.py", "--dry-run", "--variants", "A,C,C_csv")
    assert res["dry_run"] and set(res["images_per_s"]) == {"A", "C", "C_csv"} and all(x > 0 for x in res["images_per_s"].values())
    for v in ("A", "C", "C_csv"):
        assert 0 < res["cpu_ms_per_step"][v] and 0 < res["wall_ms_per_step"][v], v
        assert all("MainThread" in f["threads"] for f in res["fits"][v]), v  # every thread's CPU, by name
    assert "C_csv/A" in res and "busy threads in C" in out


def test_gpu_check_charges_a_sync_to_the_right_package():
    "A sync is charged to the innermost frame outside torch/torchmetrics, wherever the packages are installed."
    from traceback import FrameSummary
    sys.path.insert(0, str(BENCH))
    import gpu
    site = "/opt/torch/.venv/lib/python3.12/site-packages"  # a venv under a folder named torch (the lent GPU machine's)
    stack = lambda *paths: [FrameSummary(p, 7, "f") for p in paths]
    caller = str(Path(gpu.__file__).parents[1] / "autotimm" / "callbacks.py")
    assert gpu.owner(stack(caller, f"{site}/pytorch_lightning/core/module.py", f"{site}/torch/_tensor.py"))[0] == "lightning"
    assert gpu.owner(stack(f"{site}/pytorch_lightning/loops/loop.py", caller, f"{site}/torchmetrics/metric.py",
                           f"{site}/torch/functional.py")) == ("autotimm", "callbacks.py:7 f")
    assert gpu.owner(stack(f"{site}/autotimm/model.py", f"{site}/torch/nn/modules/module.py"))[0] == "autotimm"  # pip-installed


def test_epoch_cost_quick(workdir):
    "Each backend's CPU per epoch end is reported per part (timings are not checked)."
    out, res = run_bench(workdir, "epoch_cost.py", "--quick")
    assert set(res["ms_per_epoch"]) == {"tensorboard", "csv", "mlflow", "wandb", "comet"}
    for name, row in res["ms_per_epoch"].items():
        assert set(row) == {"metrics", "image", "file", "total"}, name
        assert abs(row["total"] - row["metrics"] - row["image"] - row["file"]) < 1e-6, name
    assert res["confusion_matrix_render_ms"] > 0 and "all five" in out


def test_stall_quick(workdir):
    "The training thread's stalls during an epoch end's delivery with the helper process on (timings are not checked)."
    out, res = run_bench(workdir, "stall.py", "--quick")
    assert res["helper_used"] and res["classes"] == 10 and res["epochs"] == 2
    assert res["delivery_ms"] > 0 and 0 <= res["longest_stall_ms"] <= res["longest_stall_max_ms"] and "longest stall" in out
