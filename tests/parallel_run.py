"""One small training run with TensorBoard, CSV, MLflow (a local store) and W&B offline, all under the folder `root`.

Started several at once by tests/test_run_identity.py (parallel runs, re-runs) and tests/test_multinode.py
(`--nodes 2`: one process per "node", DDP on the CPU over loopback). Prints one JSON line `RUN {...}` on rank zero.
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

from autotimm import AutoTrainer, ImageClassifier, ImageDataModule, LoggerConfig, LoggingConfig, MetricConfig


def configs(root, save_dir=None):
    "All four local backends under `root` (`save_dir`: the TensorBoard/CSV folder, default `root/logs`)."
    logs = save_dir or f"{root}/logs"
    return [LoggerConfig("tensorboard", {"save_dir": logs}), LoggerConfig("csv", {"save_dir": logs}),
            LoggerConfig("mlflow", {"experiment_name": "parallel", "save_dir": f"{root}/mlruns"}),
            LoggerConfig("wandb", {"project": "parallel", "save_dir": f"{root}/wb", "offline": True})]


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--run-name", default=None)
    ap.add_argument("--save-dir", default=None)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--nodes", type=int, default=1)
    ap.add_argument("--at", type=float, default=None, help="build the trainer at this time.time(), as another process does")
    a = ap.parse_args()
    model = ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False,
                            metrics=[MetricConfig(name="accuracy", metric_class="Accuracy", params={"task": "multiclass"})],
                            logging_config=LoggingConfig(log_confusion_matrix=True))
    while a.at is not None and time.time() < a.at: time.sleep(0.001)
    dist = dict(num_nodes=a.nodes, devices=1, strategy="ddp") if a.nodes > 1 else {}
    trainer = AutoTrainer(max_epochs=a.epochs, accelerator="cpu", live=False, enable_progress_bar=False, enable_model_summary=False,
                          limit_train_batches=4, limit_val_batches=2, checkpoint_monitor="val/accuracy", run_name=a.run_name,
                          logger=configs(a.root, a.save_dir), **dist)
    trainer.fit(model, datamodule=ImageDataModule(dataset_name="digits", image_size=16, batch_size=32, num_workers=0))
    if trainer.is_global_zero:
        m = trainer.logger_manager
        tb, csv, mlf, wb = (m.get_logger_by_backend(b) for b in ("tensorboard", "csv", "mlflow", "wandb"))
        out = {"run_name": trainer.run_name, "tb": tb.log_dir, "csv": csv.log_dir, "mlflow": mlf.run_id, "wandb": wb.version,
               "last": trainer.last_checkpoint, "pid": os.getpid()}
        m.close()
        print("RUN " + json.dumps(out), flush=True)
    sys.exit(0)
