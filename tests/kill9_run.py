"""Train with CSV and TensorBoard and kill this process with SIGKILL (as the OOM killer would) before step
`kill_at`; started by tests/test_kill9.py, which then reads what survived."""
import os
import signal
import sys

from pytorch_lightning import Callback

from autotimm import AutoTrainer, ImageClassifier, ImageDataModule, LoggerConfig


class Kill(Callback):
    def __init__(self, at): self.at = at
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.at:
            print("KILLING", trainer.global_step, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    root, kill_at, flush_every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    trainer = AutoTrainer(max_epochs=100, live=False, enable_progress_bar=False, log_every_n_steps=1, callbacks=[Kill(kill_at)],
                          logger=[LoggerConfig("csv", {"save_dir": f"{root}/logs", "flush_logs_every_n_steps": flush_every}),
                                  LoggerConfig("tensorboard", {"save_dir": f"{root}/logs"})])
    trainer.fit(ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False),
                datamodule=ImageDataModule(dataset_name="digits", image_size=16, batch_size=64))
