"""autotimm's benchmark suite: logging overhead, confusion-matrix rendering, import time.

Runs in ONE process, interleaved (A, B, C, A, B, C, ...), the same timm model on the same data on the CPU:

  A  bare pytorch_lightning: no logger, no checkpoint, no extra callbacks
  B  the hand-wired Lightning a user would write: the four Lightning loggers, LearningRateMonitor,
     grad/weight norms with Lightning's `grad_norm`, a torchmetrics confusion matrix plotted with pyplot
     and sent to each logger every validation epoch
  C  autotimm: all four backends and every LoggingConfig switch on

The model is test_resnet at 32 px; the data is the built-in digits with the training split repeated
(--train-repeat, 8 = 10k images an epoch). B and C do not checkpoint either, so only logging is compared.
Each variant keeps one MLflow store across rounds, as a user keeps one `mlruns/`.

and prints the median whole-fit time (building the loggers to finishing them) and the median steady-state
epoch time (epochs after the first, start to start) of each, the ratios C/A and C/B, the confusion-matrix
render times for 10, 100 and 1000 classes, and the import times; `--json` writes them to a file.

    .venv/bin/python bench/suite.py                 # the full run (about 10 minutes on 2 cores)
    .venv/bin/python bench/suite.py --quick         # a smoke run (CI)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
import warnings
warnings.filterwarnings("ignore")
import logging
for name in ("pytorch_lightning", "lightning", "mlflow", "alembic", "lightning_fabric"):
    logging.getLogger(name).setLevel(logging.ERROR)

import pytorch_lightning as pl
import timm
import torch
import torch.nn.functional as F
import torchmetrics
from pytorch_lightning.callbacks import LearningRateMonitor

from autotimm import AutoTrainer, ImageClassifier, ImageDataModule, LoggerConfig, LoggerManager, LoggingConfig, MetricConfig
from autotimm.backends import mlflow_local_uri

MODEL = "test_resnet"
QUIET = dict(enable_progress_bar=False, enable_model_summary=False)


class EpochTimer(pl.Callback):
    "Epoch times, start to start, so every callback's epoch-end work is inside."
    def __init__(self): self.starts = []
    def on_train_epoch_start(self, *a): self.starts.append(time.perf_counter())
    def on_train_end(self, *a): self.starts.append(time.perf_counter())
    @property
    def times(self): return [b - a for a, b in zip(self.starts, self.starts[1:])]


class Digits(ImageDataModule):
    "The built-in digits with the training split repeated `repeat` times, so an epoch is closer to a real one."
    def __init__(self, repeat, **kw):
        super().__init__(dataset_name="digits", **kw)
        self.repeat = repeat
    def setup(self, stage=None):
        if self.train_ds is None:
            super().setup(stage)
            self.train_ds = torch.utils.data.ConcatDataset([self.train_ds] * self.repeat)


def data(args): return Digits(args.train_repeat, image_size=args.image_size, batch_size=args.batch_size)


# ---------------------------------------------------------------- A: bare Lightning
class Bare(pl.LightningModule):
    def __init__(self, model=MODEL, n_classes=10):
        super().__init__()
        self.model = timm.create_model(model, pretrained=False, num_classes=n_classes)
    def training_step(self, batch, i):
        x, y = batch
        return F.cross_entropy(self.model(x), y)
    def validation_step(self, batch, i):
        x, y = batch
        F.cross_entropy(self.model(x), y)
    def configure_optimizers(self): return torch.optim.AdamW(self.parameters(), lr=1e-3)


def run_a(args, root):
    timer = EpochTimer()
    t = time.perf_counter()
    trainer = pl.Trainer(max_epochs=args.epochs, logger=False, enable_checkpointing=False, callbacks=[timer],
                         accelerator="cpu", default_root_dir=root, **QUIET)
    trainer.fit(Bare(), datamodule=data(args))
    return time.perf_counter() - t, timer.times


# ---------------------------------------------------------------- B: hand-wired Lightning
class HandWired(pl.LightningModule):
    "What a user writes by hand for the same logging, following Lightning's docs."
    def __init__(self):
        super().__init__()
        self.save_hyperparameters()
        self.model = timm.create_model(MODEL, pretrained=False, num_classes=10)
        self.train_acc = torchmetrics.Accuracy(task="multiclass", num_classes=10)
        self.val_acc = torchmetrics.Accuracy(task="multiclass", num_classes=10)
        self.confmat = torchmetrics.ConfusionMatrix(task="multiclass", num_classes=10)
    def training_step(self, batch, i):
        x, y = batch
        logits = self.model(x)
        loss = F.cross_entropy(logits, y)
        self.train_acc(logits, y)
        self.log("train/loss", loss)
        self.log("train/accuracy", self.train_acc, on_step=False, on_epoch=True)
        return loss
    def on_before_optimizer_step(self, optimizer):
        from pytorch_lightning.utilities import grad_norm
        self.log_dict(grad_norm(self, norm_type=2))
        self.log("train/weight_norm", torch.stack([p.detach().norm() for p in self.parameters()]).norm())
    def validation_step(self, batch, i):
        x, y = batch
        logits = self.model(x)
        self.log("val/loss", F.cross_entropy(logits, y))
        self.val_acc(logits, y)
        self.log("val/accuracy", self.val_acc)
        self.confmat.update(logits.argmax(1), y)
    def on_validation_epoch_end(self):
        cm = self.confmat.compute().cpu().numpy()
        self.confmat.reset()
        if self.trainer.sanity_checking: return
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(8, 7))
        ax.imshow(cm / cm.sum(1, keepdims=True).clip(min=1), cmap="Blues")
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]): ax.text(j, i, str(cm[i, j]), ha="center", va="center")
        ax.set_title(f"accuracy {cm.trace() / cm.sum():.3f}")
        step, epoch = self.global_step, self.current_epoch
        import wandb
        for lg in self.trainer.loggers:
            name = type(lg).__name__
            if name == "TensorBoardLogger": lg.experiment.add_figure("val/confusion_matrix", fig, step, close=False)
            elif name == "WandbLogger": lg.experiment.log({"val/confusion_matrix": wandb.Image(fig), "trainer/global_step": step})
            elif name == "MLFlowLogger": lg.experiment.log_figure(lg.run_id, fig, f"confusion_matrix/epoch_{epoch}.png")
            elif name == "CSVLogger": fig.savefig(Path(lg.log_dir) / f"confusion_matrix_epoch_{epoch}.png")
        plt.close(fig)
    def configure_optimizers(self): return torch.optim.AdamW(self.parameters(), lr=1e-3)


def run_b(args, root):
    from pytorch_lightning.loggers import CSVLogger, MLFlowLogger, TensorBoardLogger, WandbLogger
    timer = EpochTimer()
    t = time.perf_counter()
    loggers = [TensorBoardLogger(f"{root}/tb"), CSVLogger(f"{root}/csv"),
               MLFlowLogger("bench", tracking_uri=mlflow_local_uri(f"{root}/../mlruns-B")),
               WandbLogger(project="bench", save_dir=root, mode="offline")]
    trainer = pl.Trainer(max_epochs=args.epochs, logger=loggers, callbacks=[LearningRateMonitor("step"), timer],
                         accelerator="cpu", default_root_dir=root, enable_checkpointing=False, **QUIET)
    trainer.fit(HandWired(), datamodule=data(args))
    loggers[3].experiment.finish()
    return time.perf_counter() - t, timer.times


# ---------------------------------------------------------------- C: autotimm
def run_c(args, root):
    timer = EpochTimer()
    t = time.perf_counter()
    configs = {"tensorboard": {"save_dir": f"{root}/tb"}, "csv": {"save_dir": f"{root}/csv"},
               "mlflow": {"experiment_name": "bench", "save_dir": f"{root}/../mlruns-C"},
               "wandb": {"project": "bench", "save_dir": root, "offline": True},
               "comet": {"project": "bench", "save_dir": f"{root}/comet"}}
    manager = LoggerManager([LoggerConfig(b, configs[b]) for b in args.backends.split(",")])
    model = ImageClassifier(backbone=MODEL, num_classes=10, pretrained=False,
                            metrics=[MetricConfig(name="accuracy", metric_class="Accuracy", params={"task": "multiclass"},
                                                  stages=["train", "val"])],
                            logging_config=LoggingConfig(log_learning_rate=True, log_gradient_norm=True, log_weight_norm=True,
                                                         log_confusion_matrix=True, log_system_metrics=True))
    trainer = AutoTrainer(max_epochs=args.epochs, logger=manager, callbacks=[timer], live=False, accelerator="cpu",
                          default_root_dir=root, enable_checkpointing=False, **QUIET)
    trainer.fit(model, datamodule=data(args))
    manager.close()
    return time.perf_counter() - t, timer.times


def settle():
    "Stop W&B's service process (outside the timed part) so its backlog does not slow the next variant."
    import wandb
    wandb.teardown()


# ---------------------------------------------------------------- the other measurements
def confusion_matrix_times(repeats):
    import numpy as np
    from autotimm.plots import confusion_matrix_png
    rng = np.random.default_rng(0)
    out = {}
    for n in (10, 100, 1000):
        labels = [f"class_{i}" for i in range(n)]
        cases = {"typical": np.diag(rng.integers(20, 30, n)) + (rng.random((n, n)) < 0.05) * rng.integers(1, 4, (n, n)),
                 "dense": np.diag(rng.integers(40, 50, n)) + rng.integers(0, 5, (n, n))}
        for case, cm in cases.items():
            confusion_matrix_png(cm, labels)
            ts = []
            for _ in range(repeats):
                t = time.perf_counter(); confusion_matrix_png(cm, labels); ts.append(time.perf_counter() - t)
            out[f"{n}_{case}"] = statistics.median(ts)
    return out


def import_times(repeats):
    "Seconds to `import autotimm`, to `%load_ext autotimm`, and to `import pytorch_lightning, timm`, each in a fresh process."
    def t(setup, code):
        prog = f"{setup}\nimport time\nt = time.perf_counter()\n{code}\nprint(time.perf_counter() - t)"
        return statistics.median(float(subprocess.run([sys.executable, "-c", prog], check=True, capture_output=True,
                                                      text=True).stdout.split()[-1]) for _ in range(repeats))
    shell = "from IPython.core.interactiveshell import InteractiveShell\nip = InteractiveShell.instance()"
    return {"import_autotimm_s": t("", "import autotimm"),
            "load_ext_autotimm_s": t(shell, "ip.run_line_magic('load_ext', 'autotimm')"),
            "import_pytorch_lightning_timm_s": t("", "import pytorch_lightning, timm")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--train-repeat", type=int, default=8, help="repeat digits' training split this many times (8: 10k images)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--quick", action="store_true", help="2 epochs, 1 repeat: a smoke run")
    ap.add_argument("--json", default=None, help="write the results to this file")
    ap.add_argument("--backends", default="tensorboard,csv,mlflow,wandb",
                    help="C's backends, comma-separated (add comet to measure it: tensorboard,csv,mlflow,wandb,comet)")
    args = ap.parse_args()
    if args.quick: args.epochs, args.repeats, args.train_repeat = 2, 1, 1
    torch.set_num_threads(max(1, torch.get_num_threads()))
    runs = {"A": run_a, "B": run_b, "C": run_c}
    fit, epoch = {k: [] for k in runs}, {k: [] for k in runs}
    with tempfile.TemporaryDirectory() as tmp:
        order = list(runs)
        for r in range(args.repeats + 1):  # the first round warms up (imports, MLflow schema) and is dropped
            for k in order[r % 3:] + order[:r % 3]:  # rotate the order so no variant always follows another
                root = f"{tmp}/{k}{r}"
                total, times = runs[k](args, root)
                settle()
                if r == 0: continue
                fit[k].append(total); epoch[k] += times[1:]
                print(f"round {r} {k}: fit {total:.2f} s, epochs {' '.join(f'{x:.3f}' for x in times)}", flush=True)
    med = lambda xs: statistics.median(xs)
    res = {"config": {"model": MODEL, "image_size": args.image_size, "batch_size": args.batch_size, "epochs": args.epochs,
                      "train_images": 1252 * args.train_repeat,
                      "repeats": args.repeats, "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count()},
           "fit_s": {k: med(v) for k, v in fit.items()}, "epoch_s": {k: med(v) for k, v in epoch.items()}}
    f, e = res["fit_s"], res["epoch_s"]
    res["ratios"] = {"fit_C/A": f["C"] / f["A"], "fit_C/B": f["C"] / f["B"], "epoch_C/A": e["C"] / e["A"], "epoch_C/B": e["C"] / e["B"]}
    res["confusion_matrix_s"] = confusion_matrix_times(3 if args.quick else 7)
    res["import_s"] = import_times(1 if args.quick else 5)
    print(f"\n{'':3} {'whole fit (s)':>14} {'steady epoch (s)':>17}")
    for k in runs: print(f"{k:3} {f[k]:14.2f} {e[k]:17.3f}")
    r = res["ratios"]
    print(f"C/A {r['fit_C/A']:14.2f} {r['epoch_C/A']:17.2f}   (targets: fit <= 1.5, epoch <= 1.10)")
    print(f"C/B {r['fit_C/B']:14.2f} {r['epoch_C/B']:17.2f}   (target: <= 0.8)")
    print("confusion matrix render (s): " + ", ".join(f"{k} {v:.3f}" for k, v in res["confusion_matrix_s"].items()))
    print("import (s): " + ", ".join(f"{k} {v:.3f}" for k, v in res["import_s"].items()))
    if args.json: Path(args.json).write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
