"""autotimm's benchmark suite: what logging costs per step, per epoch and at start-up, against bare Lightning.

Every variant trains the same timm model on the same data on the CPU, in ONE process, interleaved: one warm-up
round (each variant once: imports, MLflow's schema, W&B's service; dropped), then `--repeats` rounds. In a round
every other variant runs between two runs of A (A X1 A X2 A ... Xn A), the order of the Xs rotated each round, and
each X is compared with the mean of the two A runs beside it: this VM's speed drifts by a quarter within seconds,
and a neighbour on each side cancels a drift that is steady over the three fits. Variants:

  A            bare pytorch_lightning: no logger, no checkpoint, no extra callbacks
  A_again      A once more in each round: against A, the noise floor of every ratio (the machine, not the code)
  C            autotimm, everything on: TensorBoard, CSV, MLflow (local sqlite), W&B (offline), Comet (offline);
               lr, gradient and weight norms, confusion matrix, accuracy, system metrics
  C_<backend>  the same autotimm model and switches with that one backend alone (tensorboard, csv, mlflow, wandb, comet)
  C_none       the same autotimm model and switches with no backend at all (logger=False): autotimm's own cost
  B            (opt-in, `--variants ...,B`; slow) the hand-wired Lightning a user would write for the same logging

No variant checkpoints, so only logging is compared. Each variant keeps one MLflow store across rounds, as a user
keeps one `mlruns/`. The model is test_resnet at 32 px; the data is the built-in digits (1252 training images; an
epoch is about 0.5 s on a 2-core CPU), `--train-repeat` scales the training split (2: twice, 0.5: half).

Measured from the outside, with Lightning callbacks and `time.perf_counter()` (one clock callback goes first among
the trainer's callbacks, its partner moves itself last once the model's callbacks are attached):

  step        batch start -> batch end (first `on_train_batch_start` to last `on_train_batch_end`, so every
              callback's per-batch work is inside), median over all steps of the steady-state epochs (all but the first)
  epoch       epoch start -> next epoch start (validation and epoch-end work included), median of steady-state epochs
  fixed       an epoch minus the sum of its steps (data loading, Lightning's logger writes after the batch hooks,
              validation, epoch-end work), median of steady-state epochs
  start-up    `trainer.fit(...)` called -> first `on_train_batch_start` (sanity validation included, in every variant)
  whole       building the loggers, trainer and model -> `fit` returned and the loggers closed

Each is the median over rounds with its spread (min-max; A's over all its runs). Against A, each run paired with the
mean of the A runs beside it: step and epoch and whole as ratios, fixed and start-up as extra seconds; the median of
the rounds' figures and their min-max (A_again's are the noise floor of this pairing). Against C_none (each backend's
own cost), paired by round. Also the best of the rounds: each variant's fastest
round against the fastest of the A pairs it was compared with (the machine's noise only ever adds time, so the
fastest round is the one it touched least). Targets printed beside them: step <= 1.03x, steady epoch <= 1.10x,
start-up within 1 s of A, whole fit <= 1.3x (6 epochs of ~0.5 s).
Also the confusion-matrix render times for 10, 100 and 1000 classes and the import times.

    .venv/bin/python bench/suite.py --json out.json   # the full run: 9 + 7 x 17 fits of 6 epochs, about 12 minutes on 2 quiet cores
    .venv/bin/python bench/suite.py --quick            # CI smoke run: A C A C_tensorboard A, 2 epochs, 1 round, about a minute
"""
import argparse
import gc
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
os.environ.setdefault("COMET_LOGGING_CONSOLE", "error")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
import contextlib
import io
import logging
import warnings
warnings.filterwarnings("ignore")

import pytorch_lightning as pl
import timm
import torch
import torch.nn.functional as F
import torchmetrics
from pytorch_lightning.callbacks import LearningRateMonitor

from autotimm import AutoTrainer, ImageClassifier, ImageDataModule, LoggerConfig, LoggerManager, LoggingConfig, MetricConfig
from autotimm.backends import mlflow_local_uri



def quiet_logs():
    "Libraries set their loggers' levels when imported: lower them again (cheap) so the table stays readable."
    for name in ("pytorch_lightning", "lightning", "lightning_fabric", "mlflow", "alembic", "comet_ml"):
        logging.getLogger(name).setLevel(logging.ERROR)


MODEL = "test_resnet"
QUIET = dict(enable_progress_bar=False, enable_model_summary=False)
BACKENDS = ("tensorboard", "csv", "mlflow", "wandb", "comet")
FULL = ("A", "A_again", "C", *(f"C_{b}" for b in BACKENDS), "C_none")
QUICK = ("A", "C", "C_tensorboard")
TARGETS = {"step": 1.03, "epoch": 1.10, "startup": 1.0, "whole": 1.3}  # ratios, except start-up: extra seconds


# ---------------------------------------------------------------- the clock
class Clock:
    "Times of one fit from Lightning's hooks: `first` runs before every other callback, `last` after them."
    def __init__(self):
        self.fit_called = self.first_batch = self.train_end = self._t = None
        self.epoch_starts, self.steps = [], []  # steps: one list of batch durations per epoch
        self.first, self.last = _First(self), _Last(self)

    @property
    def callbacks(self): return [self.first, self.last]

    def result(self)->dict:
        ends = self.epoch_starts[1:] + [self.train_end]
        epochs = [b - a for a, b in zip(self.epoch_starts, ends)]
        return {"startup_s": self.first_batch - self.fit_called, "epochs_s": epochs, "steps_s": self.steps}


class _First(pl.Callback):
    def __init__(self, clock): self.clock = clock
    def setup(self, trainer, pl_module, stage):
        cbs = trainer.callbacks  # the model's callbacks are attached by now: move `last` behind all of them
        cbs.remove(self.clock.last); cbs.append(self.clock.last)
    def on_train_epoch_start(self, *a):
        self.clock.epoch_starts.append(time.perf_counter()); self.clock.steps.append([])
    def on_train_batch_start(self, *a):
        self.clock._t = t = time.perf_counter()
        if self.clock.first_batch is None: self.clock.first_batch = t
    def on_train_end(self, *a): self.clock.train_end = time.perf_counter()


class _Last(pl.Callback):
    def __init__(self, clock): self.clock = clock
    def on_train_batch_end(self, *a): self.clock.steps[-1].append(time.perf_counter() - self.clock._t)


def timed_fit(trainer, model, dm, clock):
    clock.fit_called = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    return time.perf_counter() - clock.fit_called


class Digits(ImageDataModule):
    "The built-in digits with the training split scaled by `repeat` (2: each image twice; 0.5: the first half)."
    def __init__(self, repeat, **kw):
        super().__init__(dataset_name="digits", **kw)
        self.repeat = repeat
    def setup(self, stage=None):
        if self.train_ds is None:
            super().setup(stage)
            n = len(self.train_ds)
            self.train_ds = torch.utils.data.Subset(self.train_ds, [i % n for i in range(max(1, round(n * self.repeat)))])


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


def run_a(args, root, store):
    clock, t = Clock(), time.perf_counter()
    trainer = pl.Trainer(max_epochs=args.epochs, logger=False, enable_checkpointing=False, callbacks=clock.callbacks,
                         accelerator="cpu", default_root_dir=root, **QUIET)
    model, dm = Bare(), data(args)
    build = time.perf_counter() - t
    fit = timed_fit(trainer, model, dm, clock)
    return {**clock.result(), "build_s": build, "fit_s": fit, "close_s": 0.0, "whole_s": time.perf_counter() - t}


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


def run_b(args, root, store):
    from pytorch_lightning.loggers import CSVLogger, MLFlowLogger, TensorBoardLogger, WandbLogger
    clock, t = Clock(), time.perf_counter()
    loggers = [TensorBoardLogger(f"{root}/tb"), CSVLogger(f"{root}/csv"),
               MLFlowLogger("bench", tracking_uri=mlflow_local_uri(store)),
               WandbLogger(project="bench", save_dir=root, mode="offline")]
    trainer = pl.Trainer(max_epochs=args.epochs, logger=loggers, callbacks=[LearningRateMonitor("step"), *clock.callbacks],
                         accelerator="cpu", default_root_dir=root, enable_checkpointing=False, **QUIET)
    model, dm = HandWired(), data(args)
    build = time.perf_counter() - t
    fit = timed_fit(trainer, model, dm, clock)
    t1 = time.perf_counter()
    loggers[3].experiment.finish()
    t2 = time.perf_counter()
    return {**clock.result(), "build_s": build, "fit_s": fit, "close_s": t2 - t1, "whole_s": t2 - t}


# ---------------------------------------------------------------- C: autotimm
def backend_config(backend, root, store):
    return LoggerConfig(backend, {"tensorboard": {"save_dir": f"{root}/tb"}, "csv": {"save_dir": f"{root}/csv"},
                                  "mlflow": {"experiment_name": "bench", "save_dir": store},
                                  "wandb": {"project": "bench", "save_dir": root, "offline": True},
                                  "comet": {"project": "bench", "save_dir": f"{root}/comet", "online": False}}[backend])


def run_c(args, root, store, backends=BACKENDS):
    "autotimm with every LoggingConfig switch on and `backends` (none: logger=False)."
    clock, t = Clock(), time.perf_counter()
    manager = LoggerManager([backend_config(b, root, store) for b in backends]) if backends else None
    model = ImageClassifier(backbone=MODEL, num_classes=10, pretrained=False,
                            metrics=[MetricConfig(name="accuracy", metric_class="Accuracy", params={"task": "multiclass"},
                                                  stages=["train", "val"])],
                            logging_config=LoggingConfig(log_learning_rate=True, log_gradient_norm=True, log_weight_norm=True,
                                                         log_confusion_matrix=True, log_system_metrics=True))
    trainer = AutoTrainer(max_epochs=args.epochs, logger=manager if manager else False, callbacks=clock.callbacks, live=False,
                          accelerator="cpu", default_root_dir=root, enable_checkpointing=False, **QUIET)
    dm = data(args)
    build = time.perf_counter() - t
    fit = timed_fit(trainer, model, dm, clock)
    t1 = time.perf_counter()
    if manager: manager.close()
    t2 = time.perf_counter()
    return {**clock.result(), "build_s": build, "fit_s": fit, "close_s": t2 - t1, "whole_s": t2 - t}


def runner(variant):
    if variant in ("A", "A_again"): return run_a
    if variant == "B": return run_b
    if variant == "C": return run_c
    if variant == "C_none": return lambda args, root, store: run_c(args, root, store, ())
    if variant.startswith("C_") and variant[2:] in BACKENDS: return lambda args, root, store: run_c(args, root, store, (variant[2:],))
    raise SystemExit(f"unknown variant {variant!r}: use A, B, C, C_none or C_<backend> ({', '.join(BACKENDS)})")


def settle():
    "Between fits, outside the timed part: stop W&B's service process (its backlog would slow the next variant), collect garbage."
    if "wandb" in sys.modules: sys.modules["wandb"].teardown()
    gc.collect()


# ---------------------------------------------------------------- the figures
med = statistics.median


def round_figures(raw:dict)->dict:
    "One fit's figures: medians over its steady-state epochs (all but the first; the only one if there is one)."
    steady = slice(1, None) if len(raw["epochs_s"]) > 1 else slice(None)
    epochs, steps = raw["epochs_s"][steady], raw["steps_s"][steady]
    all_steps = [s for ep in steps for s in ep]
    return {"step": med(all_steps), "step_mean": statistics.fmean(all_steps), "epoch": med(epochs),
            "fixed": med(e - sum(ss) for e, ss in zip(epochs, steps)), "startup": raw["startup_s"], "fit": raw["fit_s"],
            "build": raw["build_s"], "close": raw["close_s"], "whole": raw["whole_s"]}


def spread(xs): return {"median": med(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def between(a:dict, b:dict)->dict:
    "The figures midway between two runs (A before and after a variant)."
    return {k: (a[k] + b[k]) / 2 for k in a}


def against(rounds:dict, v:str, base="A", beside:dict=None)->dict:
    """v against base: step, epoch and whole as ratios, fixed and start-up as extra seconds. Each run of v is paired with
    `beside[v]` (the mean of the A runs next to it) when given, else with base's run of the same round."""
    pairs = list(zip(rounds[v], beside[v] if beside else rounds[base]))
    out = {f"{k}_ratio": spread([c[k] / a[k] for c, a in pairs]) for k in ("step", "epoch", "fit", "whole")}
    out.update({f"{k}_extra_s": spread([c[k] - a[k] for c, a in pairs]) for k in ("fixed", "startup", "epoch", "whole")})
    best = lambda rs, k: min(r[k] for r in rs)
    paired = [a for _, a in pairs]  # the fastest of the baselines v was paired with, not of every A run
    out["best"] = {**{f"{k}_ratio": best(rounds[v], k) / best(paired, k) for k in ("step", "epoch", "whole")},
                   "startup_extra_s": best(rounds[v], "startup") - best(paired, "startup")}
    return out


def verdict(value, target): return "ok" if value <= target else "OVER"


def fmt(s, f): return f"{f(s['median'])} ({f(s['min'])}-{f(s['max'])})" if s["n"] > 1 else f(s["median"])


def report(res):
    c, cols = res["config"], ("step ms", "epoch s", "fixed s", "start-up s", "whole s")
    print(f"\n{c['model']} {c['image_size']} px, batch {c['batch_size']}, {c['train_images']} training images, {c['epochs']} epochs, "
          f"median of {c['repeats']} round(s) after a warm-up (min-max), {c['torch_threads']} torch threads, {c['cpu_count']} CPUs")
    print(f"{'':14}" + "".join(f"{h:>22}" for h in cols))
    for v, s in res["variants"].items():
        print(f"{v:14}" + "".join(f"{fmt(s[k], f):>22}" for k, f in
              (("step", lambda x: f'{1000 * x:.1f}'), ("epoch", lambda x: f'{x:.3f}'), ("fixed", lambda x: f'{x:.3f}'),
               ("startup", lambda x: f'{x:.2f}'), ("whole", lambda x: f'{x:.2f}'))))
    print("\neach run against the mean of the A runs beside it; median of the rounds (min-max)")
    print(f"{'against A':14}{'step x':>22}{'epoch x':>22}{'fixed +s':>22}{'start-up +s':>22}{'whole x':>22}")
    rx, sx = (lambda x: f"{x:.3f}"), (lambda x: f"{x:+.3f}")
    for v, r in res["against_A"].items():
        print(f"{v:14}" + "".join(f"{fmt(r[k], f):>22}" for k, f in
              (("step_ratio", rx), ("epoch_ratio", rx), ("fixed_extra_s", sx), ("startup_extra_s", sx), ("whole_ratio", rx))))
    t = TARGETS
    print(f"{'target':14}{'<= ' + str(t['step']):>22}{'<= ' + str(t['epoch']):>22}{'-':>22}{'<= +' + str(t['startup']):>22}{'<= ' + str(t['whole']):>22}")
    if "C" in res["against_A"]:
        r = res["against_A"]["C"]
        checks = [("step", r["step_ratio"], t["step"]), ("epoch", r["epoch_ratio"], t["epoch"]),
                  ("start-up", r["startup_extra_s"], t["startup"]), ("whole", r["whole_ratio"], t["whole"])]
        print("C against its targets: " + ", ".join(f"{n} {verdict(s['median'], g)}" for n, s, g in checks))
    print(f"\n{'best rounds':14}{'step x':>22}{'epoch x':>22}{'start-up +s':>22}{'whole x':>22}   (each variant's fastest round against the fastest of its paired A runs)")
    for v, r in res["against_A"].items():
        b = r["best"]
        print(f"{v:14}{b['step_ratio']:>22.3f}{b['epoch_ratio']:>22.3f}{b['startup_extra_s']:>+22.3f}{b['whole_ratio']:>22.3f}")
    print("outside fit (s), build / close: " + ", ".join(f"{v} {s['build']['median']:.2f}/{s['close']['median']:.2f}"
                                                        for v, s in res["variants"].items()))
    print("confusion matrix render (s): " + ", ".join(f"{k} {v:.3f}" for k, v in res["confusion_matrix_s"].items()))
    print("import (s): " + ", ".join(f"{k} {v:.3f}" for k, v in res["import_s"].items()))


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
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--train-repeat", type=float, default=0.5,
                    help="scale digits' training split (1252 images) by this; 0.5 (626 images) is about 0.5 s an epoch on 2 cores")
    ap.add_argument("--repeats", type=int, default=7, help="rounds after the warm-up round (the machine's speed drifts by 10-25%% within seconds: more rounds, steadier medians)")
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--variants", default=None, help=f"comma-separated (default {','.join(FULL)}; --quick: {','.join(QUICK)}); A is always run")
    ap.add_argument("--quick", action="store_true", help=f"CI smoke run: 2 epochs, 1 round, {', '.join(QUICK)}")
    ap.add_argument("--json", default=None, help="write everything (per-round raw timings included) to this file")
    args = ap.parse_args()
    if args.quick: args.epochs, args.repeats = 2, 1
    variants = args.variants.split(",") if args.variants else list(QUICK if args.quick else FULL)
    if "A" not in variants: variants.insert(0, "A")
    runs = {v: runner(v) for v in variants}
    torch.set_num_threads(max(1, torch.get_num_threads()))
    raw, rounds = {v: [] for v in variants}, {v: [] for v in variants}
    others = [v for v in variants if v != "A"]
    beside = {v: [] for v in others}  # per run of v: the mean of the A runs before and after it
    dm = data(args); dm.setup()
    train_images = len(dm.train_ds)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats + 1):  # round 0 warms up (imports, MLflow's schema, W&B's service) and is dropped
            k = r % max(1, len(others))
            order = others[k:] + others[:k]
            seq = ["A", *order] if r == 0 else ["A", *(x for v in order for x in (v, "A"))]
            done = []
            for i, v in enumerate(seq):
                quiet_logs()
                with contextlib.redirect_stdout(io.StringIO()):  # autotimm's delivery report, Comet's upload hint
                    out = runs[v](args, f"{tmp}/{v}-{r}-{i}", f"{tmp}/mlruns-{v}")
                settle()
                fig = round_figures(out)
                print(f"round {r}{' (warm-up)' if r == 0 else ''} {v}: step {1000 * fig['step']:.1f} ms, epoch {fig['epoch']:.3f} s, "
                      f"fixed {fig['fixed']:.3f} s, start-up {fig['startup']:.2f} s, whole {fig['whole']:.2f} s", flush=True)
                done.append(fig)
                if r == 0: continue
                raw[v].append(out); rounds[v].append(fig)
            if r == 0: continue
            for i in range(1, len(seq), 2): beside[seq[i]].append(between(done[i - 1], done[i + 1]))  # X between two As
    res = {"config": {"model": MODEL, "image_size": args.image_size, "batch_size": args.batch_size, "epochs": args.epochs,
                      "train_images": train_images, "train_repeat": args.train_repeat,
                      "repeats": args.repeats, "variants": variants, "quick": args.quick,
                      "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "targets": TARGETS},
           "variants": {v: {k: spread([f[k] for f in fs]) for k in fs[0]} for v, fs in rounds.items()},
           "against_A": {v: against(rounds, v, beside=beside) for v in others},
           "rounds": rounds, "beside_A": beside, "raw": raw}
    if "C_none" in variants:  # each backend's own cost: its variant against autotimm with no backend
        res["against_C_none"] = {v: against(rounds, v, "C_none") for v in variants if v.startswith("C") and v != "C_none"}
    res["training_s"] = time.perf_counter() - t0
    res["confusion_matrix_s"] = confusion_matrix_times(3 if args.quick else 7)
    res["import_s"] = import_times(1 if args.quick else 5)
    report(res)
    a_epoch = res["variants"]["A"]["epoch"]["median"]
    if not 0.35 < a_epoch < 0.7:
        print(f"note: A's steady epoch is {a_epoch:.2f} s; for epochs of about 0.5 s on this machine use "
              f"--train-repeat {args.train_repeat * 0.5 / a_epoch:.2f}")
    if args.json: Path(args.json).write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
