"""The benchmarks run from a clean checkout (smoke runs; the figures in the README come from full runs)."""
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from autotimm.backends import list_backends

ROOT = Path(__file__).parents[1]


def run_bench(workdir, *args, timeout=600):
    """Run `python *args --json out.json` (`-m bench.<name> ...`) in a fresh process, with the repository root importable
    as when run from there; its stdout and its JSON results."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    r = subprocess.run([sys.executable, *args, "--json", "out.json"], capture_output=True, text=True, timeout=timeout, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout, json.loads((workdir / "out.json").read_text())


def test_suite_quick(workdir):
    """The quick run reports the three costs of each variant and their ratios to bare Lightning, each variant's fit
    taking turns with one of A's (timings are not checked)."""
    out, res = run_bench(workdir, str(ROOT / "bench" / "suite.py"), "--quick", timeout=900)  # as its docstring says
    variants = {"A", "C", "C_tensorboard", "C_all"}
    assert set(res["variants"]) == variants and set(res["against_A"]) == variants - {"A"}
    for v, figs in res["variants"].items():
        for cost in ("step", "epoch", "fixed", "startup", "whole"):  # one A fit beside each other variant's
            assert figs[cost]["n"] == (len(variants) - 1 if v == "A" else 1), (v, cost)
            assert figs[cost]["min"] <= figs[cost]["median"] <= figs[cost]["max"], (v, cost)
        assert 0 < figs["step"]["median"] < figs["epoch"]["median"] < figs["whole"]["median"], v
        assert figs["startup"]["median"] > 0 and figs["fixed"]["median"] > 0, v
    for v, ratios in res["against_A"].items():
        assert set(ratios) >= {"step_ratio", "epoch_ratio", "whole_ratio", "fixed_extra_s", "startup_extra_s"}, v
        assert all(ratios[k]["median"] > 0 for k in ("step_ratio", "epoch_ratio", "whole_ratio")), v
    for v in variants - {"A"}:
        (j,) = res["partner_A"][v]
        x, a = res["raw"][v][0], res["raw"]["A"][j]
        # the two fits took turns: their epochs alternate in time, and each fit's clock left out the other's turns
        starts = sorted([(t, "x") for t in x["epoch_at"]] + [(t, "a") for t in a["epoch_at"]])
        assert all(p[1] != q[1] for p, q in zip(starts, starts[1:])), starts
        assert x["span_s"] == a["span_s"] and x["whole_s"] + a["whole_s"] <= x["span_s"], (x["whole_s"], a["whole_s"], x["span_s"])
        # the step ratio: the steady epoch's median step against A's epoch of the same number
        assert abs(res["against_A"][v]["step_ratio"]["median"] - statistics.median(x["steps_s"][1]) / statistics.median(a["steps_s"][1])) < 1e-12, v
    raw = res["raw"]["C"][0]  # the per-round raw timings: epochs, steps per epoch, start-up
    steps = -(-res["config"]["train_images"] // res["config"]["batch_size"])
    assert len(raw["epochs_s"]) == len(raw["steps_s"]) == 2 and all(len(s) == steps for s in raw["steps_s"])
    assert res["config"]["targets"] == {"step": 1.03, "epoch": 1.10, "startup": 1.0, "whole": 1.3}
    assert set(res["confusion_matrix_s"]) >= {"10_typical", "100_typical", "1000_typical"}
    assert res["import_s"]["import_autotimm_s"] < res["import_s"]["import_pytorch_lightning_timm_s"]
    assert "against A" in out and "C_tensorboard" in out and "C against its targets" in out and "C_all against its targets" in out


def test_taking_turns_freezes_the_other_fits_processes():
    """While one fit has its turn, the processes the other fit started are stopped (state T), and they go on after;
    a process started before (a helper kept from an earlier fit) is left running."""
    from bench import suite  # imported here: it sets the benchmarks' warning filters and environment
    seen, kept = {}, subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # there before the turns
    before = suite.children()  # kept, and whatever else this test process runs (servers of other tests)
    def starter(turns):
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            turns.pause(); turns.pause()
            return open(f"/proc/{p.pid}/stat").read().split(") ")[1][0]
        finally: p.kill(); p.wait()
    def state(pid, wait=1.0):  # a stop signal takes effect a moment after `kill` returns
        t = time.perf_counter()
        while (s := open(f"/proc/{pid}/stat").read().split(") ")[1][0]) != "T" and time.perf_counter() - t < wait: time.sleep(0.01)
        return s
    def other(turns):
        for _ in range(2):
            seen.update({pid: state(pid, 0 if pid == kept.pid else 1) for pid in suite.children() - before | {kept.pid}})
            turns.pause()
        return "done"
    t1, t2 = suite.Turns(), suite.Turns()
    try: after, done = suite.take_turns([(lambda: starter(t1), t1), (lambda: other(t2), t2)])
    finally: kept.kill(); kept.wait()
    assert seen.pop(kept.pid) in "SR", seen  # nobody's to freeze
    assert done == "done" and set(seen.values()) == {"T"} and len(seen) == 1, seen
    assert after in "SR", after  # running again in its own turn
    assert t1.waited > 0 and t1.now() < time.perf_counter() - t1.waited + 1e-3


def test_gpu_check_dry_run(workdir):
    "The GPU check runs on the CPU: images/s, the training thread's CPU time per step and the busy threads per variant."
    out, res = run_bench(workdir, "-m", "bench.gpu", "--dry-run", "--variants", "A,C,C_csv")
    assert res["dry_run"] and set(res["images_per_s"]) == {"A", "C", "C_csv"} and all(x > 0 for x in res["images_per_s"].values())
    for v in ("A", "C", "C_csv"):
        assert 0 < res["cpu_ms_per_step"][v] and 0 < res["wall_ms_per_step"][v], v
        assert all("MainThread" in f["threads"] for f in res["fits"][v]), v  # every thread's CPU, by name
    assert "C_csv/A" in res and "busy threads in C" in out


def test_gpu_check_charges_a_sync_to_the_right_package():
    "A sync is charged to the innermost frame outside torch/torchmetrics, wherever the packages are installed."
    from traceback import FrameSummary
    from bench import gpu
    site = "/opt/torch/.venv/lib/python3.12/site-packages"  # a venv under a folder named torch (the lent GPU machine's)
    stack = lambda *paths: [FrameSummary(p, 7, "f") for p in paths]
    caller = str(Path(gpu.__file__).parents[1] / "autotimm" / "callbacks.py")
    assert gpu.owner(stack(caller, f"{site}/pytorch_lightning/core/module.py", f"{site}/torch/_tensor.py"))[0] == "lightning"
    assert gpu.owner(stack(f"{site}/pytorch_lightning/loops/loop.py", caller, f"{site}/torchmetrics/metric.py",
                           f"{site}/torch/functional.py")) == ("autotimm", "callbacks.py:7 f")
    assert gpu.owner(stack(f"{site}/autotimm/model.py", f"{site}/torch/nn/modules/module.py"))[0] == "autotimm"  # pip-installed


def test_epoch_cost_quick(workdir):
    "Each backend's CPU per epoch end is reported per part (timings are not checked)."
    out, res = run_bench(workdir, "-m", "bench.epoch_cost", "--quick")
    assert set(res["ms_per_epoch"]) == set(list_backends())
    for name, row in res["ms_per_epoch"].items():
        parts = {"metrics", "image", "file", "table", "gallery"}  # what an epoch end sends with every switch on
        assert set(row) == parts | {"total"}, name
        assert abs(row["total"] - sum(row[p] for p in parts)) < 1e-6, name
    assert res["confusion_matrix_render_ms"] > 0 and "all five" in out


def test_stall_quick(workdir):
    "The training thread's stalls during an epoch end's delivery with the helper process on (timings are not checked)."
    out, res = run_bench(workdir, "-m", "bench.stall", "--quick")
    assert res["helper_used"] and res["classes"] == 10 and res["epochs"] == 2
    assert res["delivery_ms"] > 0 and 0 <= res["longest_stall_ms"] <= res["longest_stall_max_ms"] and "longest stall" in out


def test_a_fit_finishes_its_threads_work_in_its_own_turn():
    "Work a fit left on another thread (a backend's writer) is done before the other fit's turn, on the first fit's clock."
    import threading
    from bench import suite
    finished = []
    def busy(s):
        t = time.perf_counter()
        while time.perf_counter() - t < s: pass
        finished.append(time.perf_counter())
    def leaves_work(turns):
        threading.Thread(target=busy, args=(0.3,)).start()
        turns.pause()
    t1, t2 = suite.Turns(), suite.Turns()
    _, other_began = suite.take_turns([(lambda: leaves_work(t1), t1), (lambda: time.perf_counter(), t2)])
    assert finished and finished[0] <= other_began and t1.quieting >= 0.25, (finished, other_began, t1.quieting)
