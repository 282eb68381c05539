"""A W&B API key planted in `wandb.Settings` (or a settings dict) goes through a full fit and shows up nowhere: no file
under the test's folder (spools, manifests, hparams.yaml, W&B's run files, checkpoints), no repr, no printed line."""
import os
from pathlib import Path

import pytest
import wandb

from autotimm import AutoTrainer, LoggerConfig
from helpers import digits, files_containing, tiny_classifier

KEY = "a1b2c3d4e5f6a7b8c9d0" "e1f2a3b4c5d6e7f8a9b0"  # 40 characters, the shape of a W&B key


@pytest.mark.parametrize("settings", [lambda: wandb.Settings(api_key=KEY), lambda: {"api_key": KEY}], ids=["Settings", "dict"])
def test_a_planted_wandb_key_is_never_written_or_shown(workdir, capsys, settings):
    cfgs = [LoggerConfig("csv", {"save_dir": "logs"}), LoggerConfig("tensorboard", {"save_dir": "logs"}),
            LoggerConfig("wandb", {"project": "p", "offline": True, "save_dir": "wb", "settings": settings()})]
    trainer = AutoTrainer(max_epochs=1, logger=cfgs, enable_progress_bar=False, limit_train_batches=2, limit_val_batches=1,
                          checkpoint_monitor="val/loss", live=False)
    print(cfgs, trainer.logger_manager, trainer.logger_manager.configs)
    trainer.fit(tiny_classifier(), datamodule=digits())
    m = trainer.logger_manager
    m.get_logger_by_backend("wandb")._delivery._spool("log_metrics", [{"x": 1.0}, 5])  # a spool header, as after a failure
    m.close()
    print(m.summary(), m.where())
    out = capsys.readouterr()
    assert KEY not in out.out + out.err
    for c in cfgs: assert KEY not in repr(c) and KEY not in str(c.shown_params())
    assert Path(trainer.last_checkpoint).is_file() and list(workdir.rglob("spool/wandb.jsonl"))
    assert files_containing(workdir, KEY) == []
    assert KEY not in "".join(os.environ.values())
