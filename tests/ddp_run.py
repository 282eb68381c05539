"""A 2-process DDP run on the CPU (gloo) with all four backends; started by tests/test_ddp.py (Lightning re-runs this script for rank 1)."""
import os
import sys

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

from autotimm import AutoTrainer, ImageClassifier, ImageDataModule, LoggerConfig, LoggingConfig, MetricConfig

if __name__ == "__main__":
    root = sys.argv[1]
    model = ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False,
                            metrics=[MetricConfig(name="accuracy", metric_class="Accuracy", params={"task": "multiclass"})],
                            logging_config=LoggingConfig(log_gradient_norm=True, log_confusion_matrix=True))
    trainer = AutoTrainer(max_epochs=2, accelerator="cpu", devices=2, strategy="ddp", live=False, enable_progress_bar=False,
                          limit_train_batches=5, logger=[
                              LoggerConfig("tensorboard", {"save_dir": f"{root}/logs"}), LoggerConfig("csv", {"save_dir": f"{root}/logs"}),
                              LoggerConfig("mlflow", {"experiment_name": "ddp", "save_dir": f"{root}/mlruns"}),
                              LoggerConfig("wandb", {"project": "ddp", "save_dir": f"{root}/wb", "offline": True})])
    trainer.fit(model, datamodule=ImageDataModule(dataset_name="digits", image_size=16, batch_size=32))
    if trainer.is_global_zero:
        trainer.logger_manager.close()
        print("DDP-DONE", trainer.world_size)
