"""The CPU each backend spends on one epoch end's logging, measured without training.

What autotimm sends every backend at an epoch end, sent alone to each backend in turn: four `log_metrics` calls
each followed by Lightning's `save` (the step, train-epoch, validation and system metrics), the confusion matrix's
PNG (`log_image`) and its counts (`log_file`, JSON); with every switch on (`LoggingConfig(log_per_class_metrics=True,
log_misclassified=True)`) also the per-class table (`log_table`) and the misclassified gallery's PNG (`log_image`). Each part is sent once per simulated epoch, `--epochs` times,
half a second apart (MLflow's asynchronous writer collects five seconds of writes, as in a fit), and the whole process's CPU
time is read before and after (every thread, so the backends' own writer threads count too, plus child processes:
W&B's `wandb-core`). The same wait with nothing sent is subtracted (the idle cost of the backends' polling
threads, printed apart). Figures are milliseconds of CPU per epoch; the process clock ticks in 10 ms steps, so
each figure is good to about 10 ms / `--epochs`.

On a 2-core CPU where training keeps both cores busy, this CPU is taken from training wherever it runs (a slice
that preempts one of torch's two threads also stalls the other at the next op), so it is close to what each
backend adds to an epoch's wall time; `bench/suite.py` measures that directly, with the machine's noise.

    .venv/bin/python -m bench.epoch_cost --json out.json   # about 4 minutes
    .venv/bin/python -m bench.epoch_cost --quick           # smoke run
"""
import argparse
import contextlib
import io
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("COMET_LOGGING_CONSOLE", "error")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
warnings.filterwarnings("ignore")

import numpy as np
import psutil
import torch

from autotimm import LoggerManager
from autotimm.backends import log_file, log_image, log_table
from autotimm.delivery import delivery_of
from autotimm.callbacks import per_class_metrics
from autotimm.plots import confusion_matrix_png, counts_json, misclassified_png
from autotimm.trainer import start_loggers
from bench.suite import BACKENDS, backend_config, quiet_logs

PARTS = ("metrics", "image", "file", "table", "gallery")


def cpu_s()->float:
    "CPU seconds of this process (every thread) and its child processes."
    p = psutil.Process()
    t, kids = p.cpu_times(), 0.0
    for c in p.children(recursive=True):
        with contextlib.suppress(psutil.Error): kids += sum(c.cpu_times()[:2])
    return t.user + t.system + kids


def drain(lg):
    "Wait until the backend's delivery worker (if any) has sent what it was handed."
    d = delivery_of(lg)
    if d._queue is not None: d._queue.join()


def send(lg, part:str, epoch:int, media:dict):
    step = 100 * epoch
    if part == "metrics":
        for k in range(4):
            lg.log_metrics({f"part{k}/a": 0.5 + epoch, f"part{k}/b": float(k), "epoch": float(epoch)}, step=step + k)
            lg.save()
    elif part == "image": log_image([lg], "val/confusion_matrix", media["png"], step=step, name=f"epoch_{epoch:03d}")
    elif part == "file": log_file([lg], "val/confusion_matrix", f"epoch_{epoch:03d}", "json", media["counts"])
    elif part == "table": log_table([lg], "val/per_class", step, f"epoch_{epoch:03d}", media["table"])
    elif part == "gallery": log_image([lg], "val/misclassified", media["gallery"], step=step, name=f"epoch_{epoch:03d}")


def measure(lg, part:str, epochs:int, gap:float, settle:float, media:dict, first:int)->float:
    "CPU seconds per epoch that `part` (or 'idle': nothing) costs the whole process."
    drain(lg)
    t = cpu_s()
    for e in range(epochs):
        time.sleep(gap)
        if part != "idle": send(lg, part, first + e, media)
    drain(lg)
    time.sleep(settle)  # writer threads finish what they were handed
    return (cpu_s() - t) / epochs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=20, help="simulated epochs per part")
    ap.add_argument("--gap", type=float, default=0.5, help="seconds between two epochs' sends")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 epochs, short waits")
    ap.add_argument("--classes", type=int, default=10, help="the confusion matrix's classes (1000: ImageNet's, as bench/gpu.py)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    settle = 1.5
    if args.quick: args.epochs, args.gap, settle = 2, 0.05, 0.2
    n = args.classes
    cm = np.diag(np.full(n, 20)) + 1
    labels = [str(i) for i in range(n)]
    png = confusion_matrix_png(cm, labels)
    counts = counts_json({"key": "val/confusion_matrix", "epoch": 0, "step": 0, "labels": labels}, cm)  # the file the callback sends
    rng = np.random.default_rng(0)
    gallery = misclassified_png(rng.random((16, 3, 32, 32)), list(range(16)), [(i + 1) % n for i in range(16)],
                                [0.9] * 16, labels)  # 16 images, as `LoggingConfig.misclassified_count`
    media = {"png": png, "counts": counts, "table": per_class_metrics(torch.tensor(cm), labels), "gallery": gallery}
    res = {"config": {"epochs": args.epochs, "gap_s": args.gap, "quick": args.quick, "cpu_count": os.cpu_count(),
                      "classes": n, "png_bytes": len(png), "counts_bytes": len(counts)},
           "ms_per_epoch": {}, "idle_ms_per_epoch": {}}
    quiet_logs()
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        manager = LoggerManager([backend_config(b, tmp, f"{tmp}/mlruns") for b in BACKENDS])
        loggers = start_loggers(manager.loggers)
        for lg in loggers: delivery_of(lg).wait_started(60)
        for lg in loggers:
            name, first = delivery_of(lg).backend, 0
            for part in PARTS: send(lg, part, 999, media)
            drain(lg)  # first-use costs
            idle = measure(lg, "idle", args.epochs, args.gap, settle, media, 0)
            row = {}
            for part in PARTS:
                row[part] = 1000 * (measure(lg, part, args.epochs, args.gap, settle, media, first) - idle)
                first += args.epochs
            row["total"] = sum(row[p] for p in PARTS)
            res["ms_per_epoch"][name], res["idle_ms_per_epoch"][name] = row, 1000 * idle
        for lg in loggers: lg.finalize("success")
        manager.close()
    t = time.perf_counter()
    for _ in range(5): confusion_matrix_png(cm, labels)
    res["confusion_matrix_render_ms"] = 1000 * (time.perf_counter() - t) / 5
    rows = res["ms_per_epoch"]
    print(f"CPU ms per epoch end, each backend alone ({args.epochs} epochs, idle subtracted; {n} classes: "
          f"a {len(png) / 1e3:.0f} KB picture, {len(counts) / 1e3:.0f} KB of counts)")
    print(f"{'':14}" + "".join(f"{h:>10}" for h in (*PARTS, "total", "idle")))
    for name, row in rows.items():
        print(f"{name:14}" + "".join(f"{row[h]:>10.1f}" for h in (*PARTS, "total")) + f"{res['idle_ms_per_epoch'][name]:>10.1f}")
    print(f"{'all five':14}" + "".join(f"{sum(r[h] for r in rows.values()):>10.1f}" for h in (*PARTS, "total")))
    print(f"the confusion matrix's picture (drawn once, for all): {res['confusion_matrix_render_ms']:.1f} ms")
    if args.json: Path(args.json).write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__": main()
