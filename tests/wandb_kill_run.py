"""Train with W&B (offline) and CSV, and `kill -9` W&B's service process (`wandb-core`) at step `kill_at`, as the
OOM killer or a crash would; started by tests/test_wandb_kill.py, which compares what W&B holds with the CSV run."""
import json
import os
import signal
import sys
import warnings

from pytorch_lightning import Callback

from autotimm import AutoTrainer, ImageClassifier, ImageDataModule, LoggerConfig


def service_pid()->int:
    "The pid of this process's W&B service, from W&B's own handle on the process it started."
    import wandb
    return wandb.sdk.wandb_setup._singleton._connection._proc._process.pid


class KillService(Callback):
    "Kill W&B's service at the start of step `at`, or (`at` = -1) when training ends, before the runs are closed."
    def __init__(self, at): self.at = at
    def kill(self, trainer):
        pid = service_pid()
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)  # gone for sure (W&B's handle would reap it too)
        print("KILLED", pid, "at", trainer.global_step, flush=True)
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.at: self.kill(trainer)
    def on_train_end(self, trainer, pl_module):
        if self.at == -1: self.kill(trainer)


if __name__ == "__main__":
    root, kill_at, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    trainer = AutoTrainer(max_epochs=epochs, live=False, enable_progress_bar=False, log_every_n_steps=1,
                          callbacks=[KillService(kill_at)],
                          logger=[LoggerConfig("wandb", {"project": "kill", "offline": True, "save_dir": f"{root}/wandb"}),
                                  LoggerConfig("csv", {"save_dir": f"{root}/logs"})])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False),
                    datamodule=ImageDataModule(dataset_name="digits", image_size=16, batch_size=64))
    print("RESULT", json.dumps({"summary": trainer.logger_manager.summary(),
                                "warnings": [str(w.message) for w in caught if "wandb" in str(w.message).lower()]}), flush=True)
