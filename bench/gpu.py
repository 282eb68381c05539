"""GPU check: throughput of bare Lightning (A) against autotimm with everything on (C), and host syncs per step.

On a CUDA machine: resnet50 at 224 px, synthetic data, bf16 autocast, batch 64; A and C interleaved in one
process; prints images/s of each, C/A (target >= 0.98), and the host syncs per training step that come from
autotimm's code (target 0), counted with `torch.cuda.set_sync_debug_mode("warn")` and attributed by the
stack of each warning. Finishes in a few minutes on one GPU.

    python bench/gpu.py                 # on a CUDA machine
    python bench/gpu.py --dry-run       # anywhere: a tiny model on the CPU, to keep the script working (CI)
"""
import argparse
import json
import os
import statistics
import tempfile
import time
import traceback
import warnings

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
import logging
for name in ("pytorch_lightning", "lightning_fabric", "mlflow", "alembic"):
    logging.getLogger(name).setLevel(logging.ERROR)

import pytorch_lightning as pl
import torch

from autotimm import AutoTrainer, ImageClassifier, LoggerConfig, LoggerManager, LoggingConfig, MetricConfig
from suite import Bare  # A, the same bare LightningModule as the CPU suite


class Synthetic(pl.LightningDataModule):
    "Random images from a small pool (no data-loading bottleneck)."
    def __init__(self, size, n_classes, batch_size, steps, workers):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(256, 3, size, size, generator=g)
        self.y = torch.randint(0, n_classes, (256,), generator=g)
        self.batch_size, self.steps, self.workers = batch_size, steps, workers
    def _loader(self, n):
        idx = torch.arange(n * self.batch_size) % 256
        ds = torch.utils.data.TensorDataset(self.x[idx], self.y[idx])
        return torch.utils.data.DataLoader(ds, batch_size=self.batch_size, num_workers=self.workers,
                                           pin_memory=torch.cuda.is_available(), persistent_workers=self.workers > 0)
    def train_dataloader(self): return self._loader(self.steps)
    def val_dataloader(self): return self._loader(2)


class Throughput(pl.Callback):
    "Images/s per epoch over the training steps after the first `skip`, synchronized only at the ends."
    def __init__(self, skip): self.skip, self.rates = skip, []
    def on_train_batch_start(self, trainer, pl_module, batch, i):
        if i == self.skip:
            if torch.cuda.is_available(): torch.cuda.synchronize()
            self.t, self.n = time.perf_counter(), 0
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, i):
        if i >= self.skip: self.n += len(batch[0])
        if i == trainer.num_training_batches - 1:
            if torch.cuda.is_available(): torch.cuda.synchronize()
            self.rates.append(self.n / (time.perf_counter() - self.t))


class SyncCounter(pl.Callback):
    "Count host syncs raised while a training step runs, and how many came from autotimm's code."
    def __init__(self): self.total = self.autotimm = self.steps = 0; self.where = {}
    def on_train_batch_start(self, *a): self.steps += 1
    def showwarning(self, message, category, filename, lineno, file=None, line=None):
        if "synchroniz" not in str(message): return
        self.total += 1
        frames = [f for f in traceback.extract_stack() if "/autotimm/" in f.filename]
        if frames:
            self.autotimm += 1
            key = f"{frames[-1].filename.split('/autotimm/')[-1]}:{frames[-1].lineno}"
            self.where[key] = self.where.get(key, 0) + 1


def run(kind, args, root, counter=None):
    tp = Throughput(skip=args.warmup)
    kw = dict(max_epochs=args.epochs, accelerator="auto", devices=1, precision=args.precision, enable_progress_bar=False,
              enable_model_summary=False, enable_checkpointing=False, limit_val_batches=2, num_sanity_val_steps=0,
              callbacks=[tp] + ([counter] if counter else []))
    data = Synthetic(args.size, args.classes, args.batch_size, args.steps, args.workers)
    if kind == "A":
        trainer = pl.Trainer(logger=False, **kw)
        trainer.fit(Bare(args.model, args.classes), datamodule=data)
        return tp.rates
    manager = LoggerManager([LoggerConfig("tensorboard", {"save_dir": f"{root}/tb"}), LoggerConfig("csv", {"save_dir": f"{root}/csv"}),
                             LoggerConfig("mlflow", {"experiment_name": "gpu", "save_dir": f"{root}/mlruns"}),
                             LoggerConfig("wandb", {"project": "gpu", "save_dir": root, "offline": True})])
    model = ImageClassifier(backbone=args.model, num_classes=args.classes, pretrained=False,
                            metrics=[MetricConfig(name="accuracy", metric_class="Accuracy", params={"task": "multiclass"})],
                            logging_config=LoggingConfig(log_learning_rate=True, log_gradient_norm=True, log_weight_norm=True,
                                                         log_confusion_matrix=True, log_system_metrics=True))
    trainer = AutoTrainer(logger=manager, live=False, log_every_n_steps=50, **kw)
    trainer.fit(model, datamodule=data)
    manager.close()
    return tp.rates


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="tiny model on the CPU: checks the script runs")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    cuda = torch.cuda.is_available()
    if args.dry_run or not cuda:
        if not args.dry_run: print("no CUDA device: running the dry run on the CPU")
        args.model, args.size, args.classes, args.batch_size, args.steps, args.warmup = "test_resnet", 32, 10, 8, 6, 2
        args.epochs, args.repeats, args.precision, args.workers = 1, 1, "32-true", 0
    else:
        args.model, args.size, args.classes, args.batch_size, args.steps, args.warmup = "resnet50", 224, 1000, 64, 150, 20
        args.epochs, args.precision, args.workers = 2, "bf16-mixed", 6
        torch.backends.cudnn.benchmark = True
    rates = {"A": [], "C": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for kind in ("A", "C") if r % 2 == 0 else ("C", "A"):
                rates[kind] += run(kind, args, f"{tmp}/{kind}{r}")[1 if args.epochs > 1 else 0:]  # epoch 1 warms up
        counter = SyncCounter()
        if cuda and not args.dry_run:
            old = warnings.showwarning
            warnings.showwarning = counter.showwarning
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try: run("C", args, f"{tmp}/sync", counter)
            finally:
                torch.cuda.set_sync_debug_mode(0); warnings.showwarning = old
    med = {k: statistics.median(v) for k, v in rates.items()}
    res = {"device": torch.cuda.get_device_name(0) if cuda else "cpu", "dry_run": args.dry_run or not cuda,
           "model": args.model, "image_size": args.size, "batch_size": args.batch_size, "precision": args.precision,
           "images_per_s": med, "C/A": med["C"] / med["A"],
           "syncs_per_step": {"all": counter.total / max(counter.steps, 1), "autotimm": counter.autotimm / max(counter.steps, 1),
                              "autotimm_where": counter.where}}
    print(f"{res['device']}: {args.model} {args.size}px bf16={args.precision}, batch {args.batch_size}")
    print(f"A {med['A']:.1f} img/s, C {med['C']:.1f} img/s, C/A {res['C/A']:.3f} (target >= 0.98)")
    print(f"host syncs per training step: all {res['syncs_per_step']['all']:.2f}, from autotimm {res['syncs_per_step']['autotimm']:.2f} (target 0)"
          + (f" at {counter.where}" if counter.where else ""))
    if args.json:
        with open(args.json, "w") as f: json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
