"""Memory over a long run with everything on: does the process grow?

Trains test_resnet at 16 px on the built-in digits for thousands of steps with all four backends and every
LoggingConfig switch on (a confusion matrix every epoch, system metrics every second, lr and norms every
10 steps), samples the process's resident memory (after a garbage collection and glibc's `malloc_trim`, so
pages the allocator merely keeps do not count) and the number of live Python objects after every epoch, and
prints the growth between the end of the warm-up epochs, halfway and the end of the run.

    .venv/bin/python bench/memory.py [--epochs 100] [--json FILE]
"""
import argparse
import ctypes
import gc
import json
import os
import tempfile
import warnings

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
warnings.filterwarnings("ignore")
import logging
for name in ("pytorch_lightning", "lightning_fabric", "mlflow", "alembic"):
    logging.getLogger(name).setLevel(logging.ERROR)

import psutil
from pytorch_lightning import Callback

from autotimm import AutoTrainer, ImageClassifier, ImageDataModule, LoggerConfig, LoggerManager, LoggingConfig, MetricConfig


def _trim():
    "Give freed heap pages back to the OS (glibc), so RSS shows what is held, not what the allocator keeps."
    try: ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError): pass


class RSS(Callback):
    "After every epoch: resident memory (after `malloc_trim`) and the number of Python objects alive."
    def __init__(self): self.mb, self.objects, self.proc = [], [], psutil.Process()
    def on_train_epoch_end(self, *a):
        gc.collect(); _trim()
        self.mb.append(self.proc.memory_info().rss / 2**20)
        self.objects.append(len(gc.get_objects()))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=5, help="epochs before the baseline sample")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    rss = RSS()
    with tempfile.TemporaryDirectory() as root:
        manager = LoggerManager([LoggerConfig("tensorboard", {"save_dir": f"{root}/tb"}), LoggerConfig("csv", {"save_dir": f"{root}/csv"}),
                                 LoggerConfig("mlflow", {"experiment_name": "memory", "save_dir": f"{root}/mlruns"}),
                                 LoggerConfig("wandb", {"project": "memory", "save_dir": root, "offline": True})])
        model = ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False,
                                metrics=[MetricConfig(name="accuracy", metric_class="Accuracy", params={"task": "multiclass"})],
                                logging_config=LoggingConfig(log_learning_rate=True, log_gradient_norm=True, log_weight_norm=True,
                                                             log_confusion_matrix=True, log_system_metrics=True,
                                                             system_metrics_interval=1.0))
        trainer = AutoTrainer(max_epochs=a.epochs, logger=manager, callbacks=[rss], live=False, enable_progress_bar=False,
                              enable_checkpointing=False, log_every_n_steps=10)
        trainer.fit(model, datamodule=ImageDataModule(dataset_name="digits", image_size=16, batch_size=32))
        manager.close()
        steps = trainer.global_step
    base, end = rss.mb[a.warmup - 1], rss.mb[-1]
    half = rss.mb[(a.warmup + len(rss.mb)) // 2]
    hi = (a.warmup + len(rss.mb)) // 2
    obj_base, obj_half, obj_end = rss.objects[a.warmup - 1], rss.objects[hi], rss.objects[-1]
    res = {"steps": steps, "epochs": a.epochs, "rss_mb_after_warmup": base, "rss_mb_half": half, "rss_mb_end": end,
           "growth_mb": end - base, "growth_mb_second_half": end - half,
           "python_objects_after_warmup": obj_base, "python_objects_half": obj_half, "python_objects_end": obj_end,
           "rss_mb_per_epoch": rss.mb, "python_objects_per_epoch": rss.objects}
    print(f"{steps} steps, {a.epochs} epochs with everything on: resident memory {base:.0f} MB after {a.warmup} epochs, "
          f"{half:.0f} MB halfway, {end:.0f} MB at the end (growth {end - base:+.1f} MB; second half {end - half:+.1f} MB); "
          f"Python objects alive {obj_base} -> {obj_half} -> {obj_end}")
    if a.json:
        with open(a.json, "w") as f: json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
