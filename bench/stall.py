"""How long the training thread cannot run while an epoch end's confusion matrix is delivered beside it.

On an accelerator, `ConfusionMatrixLogger` draws the picture and makes the counts file in the helper process and
hands both to every backend on its worker thread, beside training. Whatever that thread runs in Python, or in C
code that keeps the GIL (`json.dumps`, `tolist`), the training thread cannot run: it launches the GPU's kernels from
Python, so the GPU waits too. This measures it with a probe thread that sleeps 0.5 ms at a time while one epoch
end's delivery (`_render_and_send`, all five backends, helper process on) runs on another thread: the probe's
longest late wake-up is the longest stall, and the sum of its wake-ups more than 2 ms late the stall in all.
Median over `--epochs` deliveries.

    .venv/bin/python -m bench.stall --classes 1000 --json out.json   # ImageNet's classes, as bench/gpu.py
    .venv/bin/python -m bench.stall --quick                          # smoke run
"""
import argparse
import contextlib
import io
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("COMET_LOGGING_CONSOLE", "error")

import numpy as np
import torch

from autotimm import LoggerManager
from autotimm.callbacks import ConfusionMatrixLogger
from autotimm.delivery import delivery_of
from autotimm.plots import render
from autotimm.trainer import start_loggers
from bench.suite import BACKENDS, backend_config, quiet_logs


def stalls(fn, tick:float=0.0005)->tuple:
    "Run `fn` on a thread while a probe thread sleeps `tick` at a time: (fn's seconds, longest stall, stalls over 2 ms in all)."
    stop, late = threading.Event(), []
    def probe():
        while not stop.is_set():
            t = time.perf_counter(); time.sleep(tick); late.append(time.perf_counter() - t - tick)
    p = threading.Thread(target=probe); p.start(); time.sleep(0.2)
    w, t = threading.Thread(target=fn), time.perf_counter()
    w.start(); w.join(); took = time.perf_counter() - t
    time.sleep(0.1); stop.set(); p.join()
    return took, max(late), sum(x for x in late if x > 0.002)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=8, help="deliveries measured")
    ap.add_argument("--quick", action="store_true", help="smoke run: 10 classes, 2 deliveries")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.quick: args.classes, args.epochs = 10, 2
    n = args.classes
    counts, labels = torch.from_numpy(np.diag(np.full(n, 20)) + 1), [str(i) for i in range(n)]
    render.start(helper=True)  # as on an accelerator
    quiet_logs()
    runs = []
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        manager = LoggerManager([backend_config(b, tmp, f"{tmp}/mlruns") for b in BACKENDS])
        loggers = start_loggers(manager.loggers)
        for lg in loggers: delivery_of(lg).wait_started(60)
        cm = ConfusionMatrixLogger(n)
        cm._render_and_send(loggers, counts, labels, 0, 0)  # first use: the helper's imports, each backend's first image
        for e in range(1, args.epochs + 1):
            runs.append(stalls(lambda: cm._render_and_send(loggers, counts, labels, 100 * e, e)))
        for lg in loggers: lg.finalize("success")
        manager.close()
    med = lambda i: 1e3 * statistics.median(r[i] for r in runs)
    res = {"classes": n, "epochs": args.epochs, "helper_used": render.drawn > 0, "delivery_ms": med(0),
           "longest_stall_ms": med(1), "longest_stall_max_ms": 1e3 * max(r[1] for r in runs), "stalls_over_2ms_ms": med(2)}
    print(f"{n} classes, five backends, helper process on: one epoch end's delivery {res['delivery_ms']:.0f} ms; the training "
          f"thread's longest stall {res['longest_stall_ms']:.0f} ms (max {res['longest_stall_max_ms']:.0f}), stalls over 2 ms "
          f"{res['stalls_over_2ms_ms']:.0f} ms in all (median of {args.epochs})")
    if args.json: Path(args.json).write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__": main()
