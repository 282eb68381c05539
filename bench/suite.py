"""autotimm's benchmark suite: what logging costs per step, per epoch and at start-up, against bare Lightning.

Every variant trains the same timm model on the same data on the CPU, in ONE process and thread, each against A in
turns: one warm-up round (each variant once, alone: imports, MLflow's schema, W&B's service; dropped), then
`--repeats` rounds. In a round each other variant X runs one fit beside one fit of A (the order of the Xs rotated
each round, who goes first alternating); the two fits run in greenlets and take turns at each epoch start and every
`--turn-steps` (5) training steps, about a tenth of a second, so both see the same machine: this VM's speed jumps by
a third for a second or two at a time, and fits run one after the other (as this suite did before) differed by up
to 40% for that alone. Each fit's clock stops while the other has its turn; before handing over, a fit waits on its
own clock until the process's other threads (the backends' writers) are idle, and the processes it started (W&B's
`wandb-core`) are frozen (SIGSTOP) during the other's turns, so no work of one fit lands in the other's time. Variants:

  A            bare pytorch_lightning: no logger, no checkpoint, no extra callbacks
  A_again      A once more in each round, in turns with A: the noise floor of every ratio (the machine, not the code)
  C            autotimm, everything on: TensorBoard, CSV, MLflow (local sqlite), W&B (offline), Comet (offline);
               lr, gradient and weight norms, confusion matrix, accuracy, system metrics
  C_<backend>  the same autotimm model and switches with that one backend alone (tensorboard, csv, mlflow, wandb, comet)
  C_none       the same autotimm model and switches with no backend at all (logger=False): autotimm's own cost
  C_all        C and every other switch too: the misclassified gallery and the per-class table (within their
               default `media_budget`, 1% of the training time each), five backends
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

Each is the median over rounds with its spread (min-max; A's over all its runs). Against A: each of X's steady
epochs against A's epoch of the same number (they ran in turns), step and epoch as ratios and the fixed part as
extra seconds, the median over the epochs; start-up and the whole fit against that A fit's; then the median of the
rounds and their min-max (A_again's are the noise floor). Against C_none (each backend's own cost): round by round,
a backend's ratios over C_none's. Targets printed beside them: step <= 1.03x, steady epoch <= 1.10x (<= 1.15x from
100 classes on), start-up within 1 s of A, whole fit <= 1.3x (6 epochs of ~0.5 s).
Also the confusion-matrix render times for 10, 100 and 1000 classes and the import times.

    .venv/bin/python bench/suite.py --json out.json   # the full run: 10 + 7 x 9 pairs of 6-epoch fits, about 15 minutes on 2 cores
    .venv/bin/python bench/suite.py --quick            # CI smoke run: A with C, C_tensorboard and C_all, 2 epochs, 1 round, about a minute
    .venv/bin/python bench/suite.py --variants C_all --classes 100   # every switch on, the digits relabelled into 100 classes

`--classes N` (a multiple of 10) relabels the digits into N classes (digit d of the i-th image becomes class
d + 10 * (i mod N/10)), for A and every variant alike, so per-class work grows as it would with a real N-class dataset.
"""
import argparse
import contextlib
import gc
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("COMET_LOGGING_CONSOLE", "error")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
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
FULL = ("A", "A_again", "C", "C_all", *(f"C_{b}" for b in BACKENDS), "C_none")
QUICK = ("A", "C", "C_tensorboard", "C_all")
TARGETS = {"step": 1.03, "epoch": 1.10, "startup": 1.0, "whole": 1.3}  # ratios, except start-up: extra seconds


def targets(classes:int)->dict:
    "The targets for `classes` classes: the steady epoch may take 1.15x from 100 classes on (per-class work grows)."
    return {**TARGETS, "epoch": 1.15} if classes >= 100 else dict(TARGETS)


# ---------------------------------------------------------------- taking turns
class Turns:
    """One fit's side of taking turns with another fit in the same process and thread (each fit runs in a greenlet):
    at each epoch start and every `steps` training steps it hands over and waits. `now()` is its running clock, the
    wall clock less the time it waited, so its figures never include the other fit's turns. Before handing over it
    waits, on its own clock, until this process's other threads (backends' writers) are idle: their work is this
    fit's, not the other's. Alone, it never waits."""
    def __init__(self, steps:int=None): self.steps, self.waited, self.back, self.quieting = steps, 0.0, None, 0.0

    def now(self): return time.perf_counter() - self.waited

    def pause(self):
        if self.back is None: return
        self.quiet()
        t = time.perf_counter()
        self.back.switch()
        self.waited += time.perf_counter() - t

    def quiet(self, most:float=2.0):
        "Wait until no other Python thread of this process runs or waits to run (their state in /proc), at most `most` s."
        t, me = time.perf_counter(), threading.get_native_id()
        tids = [th.native_id for th in threading.enumerate() if th.native_id not in (me, None)]
        while time.perf_counter() - t < most:
            time.sleep(0.001)  # lets a thread waiting for the GIL take it
            if not any(thread_state(tid) in "RD" for tid in tids): break
        self.quieting += time.perf_counter() - t


def thread_state(tid:int)->str:
    "A thread's state letter in /proc (R running or runnable, S sleeping, D disk, T stopped, ...); 'gone' if it ended."
    try:
        with open(f"/proc/self/task/{tid}/stat") as f: stat = f.read()
    except OSError: return "gone"
    return stat[stat.rindex(")") + 2]


def children()->set:
    "The processes descended from this one (W&B's `wandb-core` and its monitor). Linux's /proc; empty elsewhere."
    kids = {}
    for p in (os.listdir("/proc") if os.path.isdir("/proc") else []):
        if not p.isdigit(): continue
        try:
            with open(f"/proc/{p}/stat") as f: stat = f.read()
        except OSError: continue
        kids.setdefault(int(stat[stat.rindex(")") + 2:].split()[1]), []).append(int(p))
    out, todo = set(), list(kids.get(os.getpid(), []))
    while todo:
        q = todo.pop(); out.add(q); todo += kids.get(q, [])
    return out


def signal_all(pids, sig):
    for p in pids:
        try: os.kill(p, sig)
        except ProcessLookupError: pass


def take_turns(fits:list)->list:
    """Run `fits` ([(fit, turns)]: a function running one fit and its Turns; the first goes first) in turns in this thread,
    only one running at any time; each fit's result. The processes a fit started in its turns (W&B's service) are
    frozen (SIGSTOP) during the other fit's turns, so the other fit's time holds none of their work."""
    import greenlet  # the CPU suite's alone (bench/gpu.py imports this module on machines that may lack it)
    here, gs = greenlet.getcurrent(), [greenlet.greenlet(fit) for fit, _ in fits]
    for _, turns in fits: turns.back = here
    out, live, i, started = [None] * len(fits), list(range(len(fits))), 0, [set() for _ in fits]
    while live:
        k = live[i % len(live)]
        others = set().union(*(started[j] for j in range(len(fits)) if j != k))
        signal_all(others, signal.SIGSTOP)
        before = children()  # a process already there (a helper kept from an earlier fit) is nobody's to freeze
        r = gs[k].switch()
        started[k] |= children() - before
        signal_all(others, signal.SIGCONT)
        if gs[k].dead: out[k] = r; live.remove(k)
        else: i += 1
    return out


# ---------------------------------------------------------------- the clock
class Clock:
    "Times of one fit from Lightning's hooks on the fit's running clock: `first` runs before every other callback, `last` after them."
    def __init__(self, turns):
        self.turns, self.now = turns, turns.now
        self.fit_called = self.first_batch = self.train_end = self._t = None
        self.epoch_starts, self.epoch_at, self.steps = [], [], []  # steps: one list of batch durations per epoch
        self.first, self.last = _First(self), _Last(self)

    @property
    def callbacks(self): return [self.first, self.last]

    def result(self)->dict:
        ends = self.epoch_starts[1:] + [self.train_end]
        epochs = [b - a for a, b in zip(self.epoch_starts, ends)]
        return {"startup_s": self.first_batch - self.fit_called, "epochs_s": epochs, "steps_s": self.steps,
                "epoch_at": self.epoch_at, "quiet_s": self.turns.quieting}


class _First(pl.Callback):
    def __init__(self, clock): self.clock = clock
    def setup(self, trainer, pl_module, stage):
        cbs = trainer.callbacks  # the model's callbacks are attached by now: move `last` behind all of them
        cbs.remove(self.clock.last); cbs.append(self.clock.last)
    def on_train_epoch_start(self, *a):
        self.clock.turns.pause()  # the other run's turn
        self.clock.epoch_starts.append(self.clock.now()); self.clock.steps.append([])
        self.clock.epoch_at.append(time.perf_counter())  # the wall clock (the epochs of the two runs alternate)
    def on_train_batch_start(self, trainer, pl_module, batch, i):
        if i and self.clock.turns.steps and i % self.clock.turns.steps == 0: self.clock.turns.pause()
        self.clock._t = t = self.clock.now()
        if self.clock.first_batch is None: self.clock.first_batch = t
    def on_train_end(self, *a): self.clock.train_end = self.clock.now()


class _Last(pl.Callback):
    def __init__(self, clock): self.clock = clock
    def on_train_batch_end(self, *a): self.clock.steps[-1].append(self.clock.now() - self.clock._t)


def timed_fit(trainer, model, dm, clock):
    clock.fit_called = clock.now()
    trainer.fit(model, datamodule=dm)
    return clock.now() - clock.fit_called


class Relabelled(torch.utils.data.Dataset):
    "`ds` with digit d of item i as class d + 10 * (i mod `groups`): 10 * `groups` classes."
    def __init__(self, ds, groups): self.ds, self.groups = ds, groups
    def __len__(self): return len(self.ds)
    def __getitem__(self, i):
        x, y = self.ds[i]
        return x, int(y) + 10 * (i % self.groups)


class Digits(ImageDataModule):
    "The built-in digits with the training split scaled by `repeat` (2: each image twice; 0.5: the first half), in `classes` classes."
    def __init__(self, repeat, classes=10, **kw):
        super().__init__(dataset_name="digits", **kw)
        self.repeat, self.classes = repeat, classes
    def setup(self, stage=None):
        if self.train_ds is None:
            super().setup(stage)
            n = len(self.train_ds)
            self.train_ds = torch.utils.data.Subset(self.train_ds, [i % n for i in range(max(1, round(n * self.repeat)))])
            if self.classes != 10:
                g = self.classes // 10
                self.train_ds, self.val_ds = Relabelled(self.train_ds, g), Relabelled(self.val_ds, g)
                self.class_names = [f"{d}.{j}" for j in range(g) for d in range(10)]
    @property
    def num_classes(self): return self.classes


def data(args): return Digits(args.train_repeat, args.classes, image_size=args.image_size, batch_size=args.batch_size)


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


def run_a(args, root, store, turns):
    clock = Clock(turns); t = clock.now()
    trainer = pl.Trainer(max_epochs=args.epochs, logger=False, enable_checkpointing=False, callbacks=clock.callbacks,
                         accelerator="cpu", default_root_dir=root, **QUIET)
    model, dm = Bare(n_classes=args.classes), data(args)
    build = clock.now() - t
    fit = timed_fit(trainer, model, dm, clock)
    return {**clock.result(), "build_s": build, "fit_s": fit, "close_s": 0.0, "whole_s": clock.now() - t}


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


def run_b(args, root, store, turns):
    from pytorch_lightning.loggers import CSVLogger, MLFlowLogger, TensorBoardLogger, WandbLogger
    clock = Clock(turns); t = clock.now()
    loggers = [TensorBoardLogger(f"{root}/tb"), CSVLogger(f"{root}/csv"),
               MLFlowLogger("bench", tracking_uri=mlflow_local_uri(store)),
               WandbLogger(project="bench", save_dir=root, mode="offline")]
    trainer = pl.Trainer(max_epochs=args.epochs, logger=loggers, callbacks=[LearningRateMonitor("step"), *clock.callbacks],
                         accelerator="cpu", default_root_dir=root, enable_checkpointing=False, **QUIET)
    model, dm = HandWired(), data(args)
    build = clock.now() - t
    fit = timed_fit(trainer, model, dm, clock)
    t1 = clock.now()
    loggers[3].experiment.finish()
    t2 = clock.now()
    return {**clock.result(), "build_s": build, "fit_s": fit, "close_s": t2 - t1, "whole_s": t2 - t}


# ---------------------------------------------------------------- C: autotimm
def backend_config(backend, root, store):
    return LoggerConfig(backend, {"tensorboard": {"save_dir": f"{root}/tb"}, "csv": {"save_dir": f"{root}/csv"},
                                  "mlflow": {"experiment_name": "bench", "save_dir": store},
                                  "wandb": {"project": "bench", "save_dir": root, "offline": True},
                                  "comet": {"project": "bench", "save_dir": f"{root}/comet", "online": False}}[backend])


def run_c(args, root, store, turns, backends=BACKENDS, every:bool=False):
    "autotimm with lr, norms, matrix, accuracy, system metrics and `backends` (none: logger=False); `every`: every switch."
    clock = Clock(turns); t = clock.now()
    manager = LoggerManager([backend_config(b, root, store) for b in backends]) if backends else None
    model = ImageClassifier(backbone=MODEL, num_classes=args.classes, pretrained=False,
                            metrics=[MetricConfig(name="accuracy", metric_class="Accuracy", params={"task": "multiclass"},
                                                  stages=["train", "val"])],
                            logging_config=LoggingConfig(log_learning_rate=True, log_gradient_norm=True, log_weight_norm=True,
                                                         log_confusion_matrix=True, log_system_metrics=True,
                                                         log_misclassified=every, log_per_class_metrics=every))
    trainer = AutoTrainer(max_epochs=args.epochs, logger=manager if manager else False, callbacks=clock.callbacks, live=False,
                          accelerator="cpu", default_root_dir=root, enable_checkpointing=False, **QUIET)
    dm = data(args)
    build = clock.now() - t
    fit = timed_fit(trainer, model, dm, clock)
    t1 = clock.now()
    if manager: manager.close()
    t2 = clock.now()
    return {**clock.result(), "build_s": build, "fit_s": fit, "close_s": t2 - t1, "whole_s": t2 - t}


def runner(variant):
    if variant in ("A", "A_again"): return run_a
    if variant == "B": return run_b
    if variant == "C": return run_c
    if variant == "C_all": return lambda args, root, store, turns: run_c(args, root, store, turns, every=True)
    if variant == "C_none": return lambda args, root, store, turns: run_c(args, root, store, turns, ())
    if variant.startswith("C_") and variant[2:] in BACKENDS: return lambda args, root, store, turns: run_c(args, root, store, turns, (variant[2:],))
    raise SystemExit(f"unknown variant {variant!r}: use A, B, C, C_all, C_none or C_<backend> ({', '.join(BACKENDS)})")


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
            "build": raw["build_s"], "close": raw["close_s"], "whole": raw["whole_s"], "quiet": raw["quiet_s"]}


def epoch_figures(raw:dict)->list:
    "Each steady-state epoch of a fit: its median step, its length and its fixed part."
    steady = slice(1, None) if len(raw["epochs_s"]) > 1 else slice(None)
    return [{"step": med(ss), "epoch": e, "fixed": e - sum(ss)} for e, ss in list(zip(raw["epochs_s"], raw["steps_s"]))[steady]]


def paired(x_raw:dict, a_raw:dict)->dict:
    """X against the A run it took turns with: each of X's steady epochs against A's epoch of the same number, which
    ran in turns with it (step and epoch as ratios, the fixed part as extra seconds), the median over the epochs;
    start-up and the whole fit against A's."""
    es = list(zip(epoch_figures(x_raw), epoch_figures(a_raw)))
    x, a = round_figures(x_raw), round_figures(a_raw)
    return {"step_ratio": med(e["step"] / b["step"] for e, b in es), "epoch_ratio": med(e["epoch"] / b["epoch"] for e, b in es),
            "fixed_extra_s": med(e["fixed"] - b["fixed"] for e, b in es), "epoch_extra_s": med(e["epoch"] - b["epoch"] for e, b in es),
            "startup_extra_s": x["startup"] - a["startup"], "fit_ratio": x["fit"] / a["fit"],
            "whole_ratio": x["whole"] / a["whole"], "whole_extra_s": x["whole"] - a["whole"]}


def spread(xs): return {"median": med(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def against(pairs:list)->dict:
    "A variant's pairs over the rounds: the median of each figure and its min-max."
    return {k: spread([p[k] for p in pairs]) for k in pairs[0]}


def against_none(pairs:list, none:list)->dict:
    "A variant's cost over C_none's (each backend's own cost): round by round, its ratios over C_none's and its extra seconds less C_none's."
    return {k: spread([(p[k] / q[k]) if k.endswith("_ratio") else p[k] - q[k] for p, q in zip(pairs, none)])
            for k in pairs[0]}


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
    print("\neach run against the A run it took turns with, epoch by epoch; median of the rounds (min-max)")
    print(f"{'against A':14}{'step x':>22}{'epoch x':>22}{'fixed +s':>22}{'start-up +s':>22}{'whole x':>22}")
    rx, sx = (lambda x: f"{x:.3f}"), (lambda x: f"{x:+.3f}")
    for v, r in res["against_A"].items():
        print(f"{v:14}" + "".join(f"{fmt(r[k], f):>22}" for k, f in
              (("step_ratio", rx), ("epoch_ratio", rx), ("fixed_extra_s", sx), ("startup_extra_s", sx), ("whole_ratio", rx))))
    t = res["config"]["targets"]
    print(f"{'target':14}{'<= ' + str(t['step']):>22}{'<= ' + str(t['epoch']):>22}{'-':>22}{'<= +' + str(t['startup']):>22}{'<= ' + str(t['whole']):>22}")
    for v in ("C", "C_all"):
        if v not in res["against_A"]: continue
        r = res["against_A"][v]
        checks = [("step", r["step_ratio"], t["step"]), ("epoch", r["epoch_ratio"], t["epoch"]),
                  ("start-up", r["startup_extra_s"], t["startup"]), ("whole", r["whole_ratio"], t["whole"])]
        print(f"{v} against its targets: " + ", ".join(f"{n} {verdict(s['median'], g)}" for n, s, g in checks))
    print("outside fit (s), build / close: " + ", ".join(f"{v} {s['build']['median']:.2f}/{s['close']['median']:.2f}"
                                                        for v, s in res["variants"].items()))
    print("waited for its own threads before handing over (s a fit; on its clock): " +
          ", ".join(f"{v} {s['quiet']['median']:.3f}" for v, s in res["variants"].items()))
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
    ap.add_argument("--repeats", type=int, default=7, help="rounds after the warm-up round (more rounds, steadier medians)")
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--classes", type=int, default=10, help="the digits relabelled into this many classes (a multiple of 10)")
    ap.add_argument("--turn-steps", type=int, default=5, help="the two runs of a pair take turns every this many training steps (and at each epoch start)")
    ap.add_argument("--variants", default=None, help=f"comma-separated (default {','.join(FULL)}; --quick: {','.join(QUICK)}); A is always run")
    ap.add_argument("--quick", action="store_true", help=f"CI smoke run: 2 epochs, 1 round, {', '.join(QUICK)}")
    ap.add_argument("--json", default=None, help="write everything (per-round raw timings included) to this file")
    args = ap.parse_args()
    if args.classes < 10 or args.classes % 10: ap.error(f"--classes must be a multiple of 10, got {args.classes}")
    if args.quick: args.epochs, args.repeats = 2, 1
    variants = args.variants.split(",") if args.variants else list(QUICK if args.quick else FULL)
    if "A" not in variants: variants.insert(0, "A")
    runs = {v: runner(v) for v in variants}
    others = [v for v in variants if v != "A"]
    raw, rounds = {v: [] for v in variants}, {v: [] for v in variants}
    pairs, partners = {v: [] for v in others}, {v: [] for v in others}  # per run of v: its figures against A, A's run (index)
    dm = data(args); dm.setup()
    train_images = len(dm.train_ds)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    t0 = time.perf_counter()

    def fits(*jobs):
        "Run the fits of (variant, round, index) in turns (alone: one), quietly; their raw figures."
        made = [Turns(args.turn_steps) for _ in jobs]
        todo = [(lambda v=v, r=r, i=i, t=t: runs[v](args, f"{tmp}/{v}-{r}-{i}", f"{tmp}/mlruns-{v}", t), t)
                for (v, r, i), t in zip(jobs, made)]
        quiet_logs()
        t = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # autotimm's delivery report, Comet's upload hint
            out = take_turns(todo)
        span = time.perf_counter() - t  # the wall time of all the fits taking turns
        for o in out: o["span_s"] = span
        settle()
        return out

    with tempfile.TemporaryDirectory() as tmp:
        for v in variants:  # warm-up (imports' first calls, MLflow's schema, W&B's service), alone; dropped
            fig = round_figures(fits((v, 0, 0))[0])
            print(f"warm-up {v}: step {1000 * fig['step']:.1f} ms, epoch {fig['epoch']:.3f} s, whole {fig['whole']:.2f} s", flush=True)
        for r in range(1, args.repeats + 1):
            k = r % max(1, len(others))
            for i, v in enumerate(others[k:] + others[:k]):
                jobs = [("A", r, i), (v, r, i)]
                a_out, x_out = fits(*jobs) if r % 2 else fits(*jobs[::-1])[::-1]  # who goes first alternates
                a, x = round_figures(a_out), round_figures(x_out)
                partners[v].append(len(raw["A"]))
                raw["A"].append(a_out); rounds["A"].append(a); raw[v].append(x_out); rounds[v].append(x)
                pairs[v].append(paired(x_out, a_out))
                p = pairs[v][-1]
                print(f"round {r} {v} (A): step {1000 * x['step']:.1f} ({1000 * a['step']:.1f}) ms {p['step_ratio']:.3f}x, "
                      f"epoch {x['epoch']:.3f} ({a['epoch']:.3f}) s {p['epoch_ratio']:.3f}x, start-up {x['startup']:.2f} "
                      f"({a['startup']:.2f}) s, whole {x['whole']:.2f} ({a['whole']:.2f}) s", flush=True)
    res = {"config": {"model": MODEL, "image_size": args.image_size, "batch_size": args.batch_size, "epochs": args.epochs,
                      "train_images": train_images, "train_repeat": args.train_repeat, "classes": args.classes,
                      "repeats": args.repeats, "variants": variants, "quick": args.quick,
                      "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "targets": targets(args.classes)},
           "variants": {v: {k: spread([f[k] for f in fs]) for k in fs[0]} for v, fs in rounds.items()},
           "against_A": {v: against(pairs[v]) for v in others},
           "rounds": rounds, "pairs": pairs, "partner_A": partners, "raw": raw}
    if "C_none" in variants:  # each backend's own cost: its variant against autotimm with no backend
        res["against_C_none"] = {v: against_none(pairs[v], pairs["C_none"]) for v in others if v.startswith("C") and v != "C_none"}
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
