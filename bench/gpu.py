"""GPU check: throughput of bare Lightning against autotimm, host syncs per training step, and where the time goes.

On a CUDA machine: resnet50 at 224 px, bf16 autocast, batch 64, on batches made once on the device (no input
pipeline, so only the training loop is compared). In one process, interleaved, the order rotated each round:

  A            bare pytorch_lightning: no logger, no checkpoint, no extra callbacks (the CPU suite's `Bare`)
  C            autotimm, everything on: TensorBoard, CSV, MLflow (local sqlite), W&B (offline), Comet (offline, when
               installed); lr, gradient and weight norms, confusion matrix, accuracy, system metrics
  C_none       the same autotimm model and switches with no backend (logger=False): autotimm's own cost
  C_<backend>  the same with that one backend alone (`--variants all` runs every variant)

Reports images/s of each (median of the steady epochs of all rounds: the first epoch of a fit warms up) against A
(target >= 0.98); over the same steps the training thread's CPU time per step against the wall time (equal: the
loop is CPU-bound and the GPU waits for it) and the CPU time of every other thread by name. Host syncs per training
step (`torch.cuda.set_sync_debug_mode("warn")`, one fit each of A and C): each sync is charged to the innermost frame
outside torch and torchmetrics, so a torchmetrics update that autotimm's step makes is autotimm's, and one Lightning
makes for its own logging is Lightning's (the same in A and C). Target: 0 per step from autotimm. With `--profile`:
one profiled fit of A and of C (torch.profiler), their top CPU operations to files, and the share of each step the
GPU is busy.

    python -m bench.gpu --json gpu.json --profile out/                 # A, C, C_none: about 5 minutes on one H200
    python -m bench.gpu --variants all --json gpu.json --profile out/  # and each backend alone: about 9 minutes
    python -m bench.gpu --dry-run                                      # anywhere: a tiny model on the CPU (CI)
"""
import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import traceback
import warnings

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("COMET_LOGGING_CONSOLE", "error")
import importlib.util

import pytorch_lightning as pl
import torch

from autotimm import AutoTrainer, ImageClassifier, LoggerManager, LoggingConfig, MetricConfig
from bench.suite import BACKENDS, QUIET, Bare, backend_config, quiet_logs  # the CPU suite's A and backend settings


class Batches(pl.LightningDataModule):
    "`steps` random batches made once on the device; every epoch yields the same ones (no data-loading cost)."
    def __init__(self, size, n_classes, batch_size, steps, device):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.batches = [(torch.randn(batch_size, 3, size, size, generator=g).to(device),
                         torch.randint(0, n_classes, (batch_size,), generator=g).to(device)) for _ in range(steps)]
    def train_dataloader(self): return torch.utils.data.DataLoader(self.batches, batch_size=None)
    def val_dataloader(self): return torch.utils.data.DataLoader(self.batches[:2], batch_size=None)


def thread_cpu()->dict:
    "CPU seconds so far of each of this process's threads, by Python thread name (others: their OS name). Linux only."
    named = {t.native_id: t.name for t in threading.enumerate()}
    out, tick = {}, os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for tid in (os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else []):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f: stat = f.read()
        except OSError: continue
        comm, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        name = named.get(int(tid), f"{comm} (not Python's)")
        out[name] = out.get(name, 0.0) + (int(rest[11]) + int(rest[12])) / tick  # utime + stime
    return out


class Throughput(pl.Callback):
    """Images/s per epoch over the training steps after the first `skip`, synchronized only at the ends; over the same
    steps the training thread's CPU time (when it is close to the wall time the loop is CPU-bound, not GPU-bound) and
    every other thread's CPU time, by name."""
    def __init__(self, skip): self.skip, self.rates, self.cpu_ms, self.wall_ms, self.threads = skip, [], [], [], []
    def on_train_batch_start(self, trainer, pl_module, batch, i):
        if i == self.skip:
            if torch.cuda.is_available(): torch.cuda.synchronize()
            self.t, self.c, self.n, self.th = time.perf_counter(), time.thread_time(), 0, thread_cpu()
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, i):
        if i >= self.skip: self.n += len(batch[0])
        if i == trainer.num_training_batches - 1:
            if torch.cuda.is_available(): torch.cuda.synchronize()
            wall, steps, th = time.perf_counter() - self.t, i + 1 - self.skip, thread_cpu()
            self.rates.append(self.n / wall)
            self.wall_ms.append(1e3 * wall / steps); self.cpu_ms.append(1e3 * (time.thread_time() - self.c) / steps)
            self.threads.append({k: (v - self.th.get(k, 0.0)) / wall for k, v in th.items() if v - self.th.get(k, 0.0) > 0})


def owner(stack):
    """Who made a sync: the innermost frame outside torch and torchmetrics (and the warnings machinery), as
    (package, 'file:line function'); an installed package is named by its folder under site-packages."""
    for f in reversed(stack):
        path = f.filename.replace("\\", "/")
        if f.filename == __file__ and f.name == "showwarning": continue
        if "/autotimm/" in path and "-packages/" not in path: return "autotimm", f"{path.split('/autotimm/')[-1]}:{f.lineno} {f.name}"
        top = path.split("-packages/")[-1].split("/")[0] if "-packages/" in path else None
        if top in ("torch", "torchmetrics") or path.endswith("/warnings.py") or path == "<frozen importlib._bootstrap>": continue
        pkg = {"pytorch_lightning": "lightning", "lightning_fabric": "lightning", "lightning": "lightning"}.get(top, top or "other")
        where = path.split("-packages/")[-1] if top else os.path.basename(path)
        return pkg, f"{where}:{f.lineno} {f.name}"
    return "other", "?"


class SyncCounter(pl.Callback):
    "Host syncs while a training step runs (batch start to batch end, the optimizer step inside) and outside, by owner."
    def __init__(self): self.steps, self.in_step, self.per_step, self.outside, self.where = 0, False, {}, {}, {}
    def on_train_batch_start(self, *a): self.steps += 1; self.in_step = True
    def on_train_batch_end(self, *a): self.in_step = False
    def showwarning(self, message, category, filename, lineno, file=None, line=None):
        if "synchroniz" not in str(message): return
        pkg, site = owner(traceback.extract_stack())
        counts = self.per_step if self.in_step else self.outside
        counts[pkg] = counts.get(pkg, 0) + 1
        key = f"{'step' if self.in_step else 'outside'} {pkg}/{site}"
        self.where[key] = self.where.get(key, 0) + 1
    def result(self):
        n = max(self.steps, 1)
        return {"steps": self.steps, "per_step": {k: v / n for k, v in self.per_step.items()},
                "outside_steps_total": self.outside, "sites": dict(sorted(self.where.items(), key=lambda kv: -kv[1]))}


class Profile(pl.Callback):
    "torch.profiler over training steps `wait+3` to `wait+3+active`; the wall time of those steps."
    def __init__(self, wait, active):
        from torch.profiler import ProfilerActivity, profile, schedule
        self.first, self.active = wait + 3, active
        self.prof = profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA],
                            schedule=schedule(wait=wait, warmup=3, active=active, repeat=1))
    def on_train_start(self, *a): self.prof.__enter__()
    def on_train_batch_start(self, trainer, pl_module, batch, i):
        if i == self.first: torch.cuda.synchronize(); self.t = time.perf_counter()
        if i == self.first + self.active: torch.cuda.synchronize(); self.wall = time.perf_counter() - self.t
    def on_train_batch_end(self, *a): self.prof.step()
    def on_train_end(self, *a): self.prof.__exit__(None, None, None)
    def report(self):
        ev = self.prof.key_averages()
        gpu_us = sum(e.self_device_time_total for e in ev if e.device_type == torch.autograd.DeviceType.CUDA)
        return {"step_ms": 1e3 * self.wall / self.active, "gpu_busy": gpu_us / 1e6 / self.wall,
                "table": ev.table(sort_by="self_cpu_time_total", row_limit=35)}


def run(kind, args, root, extra=(), steps=None, epochs=None)->Throughput:
    "One fit of `kind` (A, C, C_none or C_<backend>); its `Throughput` (the first epoch warms up: read `[1:]`)."
    tp = Throughput(skip=args.warmup)
    kw = dict(max_epochs=epochs or args.epochs, accelerator="auto", devices=1, precision=args.precision,
              enable_checkpointing=False, limit_val_batches=2, num_sanity_val_steps=0, callbacks=[tp, *extra], **QUIET)
    data = Batches(args.size, args.classes, args.batch_size, steps or args.steps, "cuda" if args.cuda else "cpu")
    if kind == "A":
        pl.Trainer(logger=False, default_root_dir=root, **kw).fit(Bare(args.model, args.classes), datamodule=data)
    else:
        backends = args.backends if kind == "C" else [] if kind == "C_none" else [kind[2:]]
        manager = LoggerManager([backend_config(b, root, f"{root}/mlruns") for b in backends]) if backends else None
        model = ImageClassifier(backbone=args.model, num_classes=args.classes, pretrained=False,
                                metrics=[MetricConfig(name="accuracy", metric_class="Accuracy", params={"task": "multiclass"},
                                                      stages=["train", "val"])],
                                logging_config=LoggingConfig(log_learning_rate=True, log_gradient_norm=True, log_weight_norm=True,
                                                             log_confusion_matrix=True, log_system_metrics=True))
        AutoTrainer(logger=manager or False, live=False, log_every_n_steps=50, default_root_dir=root, **kw).fit(model, datamodule=data)
        if manager: manager.close()
    quiet_logs()
    return tp


def count_syncs(kind, args, root):
    counter = SyncCounter()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = counter.showwarning
            run(kind, args, root, [counter], steps=60, epochs=1)
    finally: torch.cuda.set_sync_debug_mode(0)
    return counter.result()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="tiny model on the CPU: checks the script runs")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--variants", default="A,C,C_none", help="comma-separated: A, C, C_none, C_<backend> "
                    f"({', '.join(BACKENDS)}), or 'all' for every one of them")
    ap.add_argument("--json", default=None)
    ap.add_argument("--profile", default=None, help="folder for profile_A.txt and profile_C.txt (CUDA only)")
    ap.add_argument("--steps", type=int, default=None, help="training steps an epoch (default: 150 on a GPU, 6 in the dry run)")
    args = ap.parse_args()
    steps = args.steps
    quiet_logs()
    warnings.filterwarnings("ignore", message=".*(does not have many workers|num_workers|LeafSpec|tensor cores).*")
    args.cuda = torch.cuda.is_available() and not args.dry_run
    if not args.cuda:
        if not args.dry_run: print("no CUDA device: running the dry run on the CPU")
        args.model, args.size, args.classes, args.batch_size, args.steps, args.warmup = "test_resnet", 32, 10, 8, 6, 2
        args.epochs, args.repeats, args.precision = 1, 1, "32-true"
    else:
        args.model, args.size, args.classes, args.batch_size, args.steps, args.warmup = "resnet50", 224, 1000, 64, 150, 20
        args.epochs, args.precision = 2, "bf16-mixed"
        torch.backends.cudnn.benchmark = True
    if steps: args.steps, args.epochs = steps, max(args.epochs, 2)
    args.backends = [b for b in BACKENDS if b != "comet" or importlib.util.find_spec("comet_ml")]
    variants = (["A", "C", "C_none", *(f"C_{b}" for b in args.backends)] if args.variants == "all"
                else args.variants.split(","))
    bad = [v for v in variants if v not in ("A", "C", "C_none") and not (v.startswith("C_") and v[2:] in args.backends)]
    if bad or "A" not in variants: raise SystemExit(f"--variants: unknown {bad} (A is needed; backends here: {args.backends})")
    fits = {v: [] for v in variants}
    res = {"device": torch.cuda.get_device_name(0) if args.cuda else "cpu", "dry_run": not args.cuda,
           "model": args.model, "image_size": args.size, "batch_size": args.batch_size, "precision": args.precision,
           "steps_per_epoch": args.steps, "backends": args.backends,
           "versions": {"torch": torch.__version__, "pytorch_lightning": pl.__version__}}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for v in variants[r % len(variants):] + variants[:r % len(variants)]:
                tp = run(v, args, f"{tmp}/{v}{r}")
                keep = slice(1, None) if len(tp.rates) > 1 else slice(None)  # the first epoch warms up
                fits[v] += [{"images_per_s": x, "wall_ms": w, "cpu_ms": c, "threads": t} for x, w, c, t in
                            zip(tp.rates[keep], tp.wall_ms[keep], tp.cpu_ms[keep], tp.threads[keep])]
                print(f"round {r} {v}: " + ", ".join(f"{x:.0f} img/s ({c:.1f} of {w:.1f} ms a step on the training thread's CPU)"
                      for x, w, c in zip(tp.rates[keep], tp.wall_ms[keep], tp.cpu_ms[keep])), flush=True)
        if args.cuda:
            res["syncs"] = {k: count_syncs(k, args, f"{tmp}/sync{k}") for k in ("A", "C")}
        if args.cuda and args.profile:
            os.makedirs(args.profile, exist_ok=True)
            res["profile"] = {}
            for k in ("A", "C"):
                p = Profile(wait=10, active=20)
                run(k, args, f"{tmp}/prof{k}", [p], steps=40, epochs=1)
                rep = p.report()
                with open(f"{args.profile}/profile_{k}.txt", "w") as f: f.write(rep.pop("table"))
                res["profile"][k] = rep
    med = lambda v, key: statistics.median(f[key] for f in fits[v])
    ips = {v: med(v, "images_per_s") for v in variants}
    res.update(images_per_s=ips, **{f"{v}/A": ips[v] / ips["A"] for v in variants if v != "A"},
               cpu_ms_per_step={v: med(v, "cpu_ms") for v in variants}, wall_ms_per_step={v: med(v, "wall_ms") for v in variants},
               fits=fits)
    print(f"{res['device']}: {args.model} {args.size}px {args.precision}, batch {args.batch_size}, backends {', '.join(args.backends)}")
    print("images/s (median of steady epochs): " + ", ".join(f"{k} {v:.1f}" for k, v in ips.items())
          + "; " + ", ".join(f"{k}/A {ips[k] / ips['A']:.3f}" for k in ips if k != "A") + " (target >= 0.98)")
    print("a step, wall / training thread's CPU (ms): " + ", ".join(
        f"{v} {res['wall_ms_per_step'][v]:.2f} / {res['cpu_ms_per_step'][v]:.2f}" for v in variants))
    for v in variants:  # the other threads that were busy while the steps ran (CPU seconds per second)
        busy = {}
        for f in fits[v]:
            for name, x in f["threads"].items(): busy.setdefault(name, []).append(x)
        top = sorted(((statistics.median(x), n) for n, x in busy.items()), reverse=True)[:6]
        print(f"  busy threads in {v}: " + ", ".join(f"{n} {x:.2f}" for x, n in top))
    for k, s in res.get("syncs", {}).items():
        print(f"host syncs per training step in {k}: " + (", ".join(f"{p} {n:.2f}" for p, n in s["per_step"].items()) or "0")
              + f"; outside steps (validation, epoch ends) in the whole fit: {s['outside_steps_total'] or 0}")
        for site, n in list(s["sites"].items())[:8]: print(f"    {n:5d}  {site}")
    if "syncs" in res:
        auto = res["syncs"]["C"]["per_step"].get("autotimm", 0.0)
        print(f"host syncs per training step from autotimm: {auto:.2f} (target 0)")
    for k, p in res.get("profile", {}).items():
        print(f"profile {k}: {p['step_ms']:.1f} ms a step, GPU busy {100 * p['gpu_busy']:.0f}% of it")
    if args.json:
        with open(args.json, "w") as f: json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
