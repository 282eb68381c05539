"""No code runs from a checkpoint: autotimm reads the checkpoint it is given, and any `last.ckpt` it consults, with
`torch.load(weights_only=True)`. A crafted pickle (its `__reduce__` creates a marker file) is refused with an error
saying what to do, and the marker is never created; what autotimm itself stores in a checkpoint is plain."""
import os
import pickle

import pytest
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from autotimm import AutoTrainer, ImageClassifier, LoggerConfig
from autotimm.manifest import PROGRESS_FILE
from helpers import digits

KW = dict(enable_progress_bar=False, enable_model_summary=False, limit_train_batches=3, limit_val_batches=2,
          checkpoint_monitor="val/loss", live=False)


class Crafted:
    "Runs `touch <marker>` when unpickled."
    def __init__(self, marker): self.marker = str(marker)
    def __reduce__(self): return (os.system, (f"touch {self.marker}",))


def model(): return ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False)


def trainer(**kw): return AutoTrainer(**{"max_epochs": 2, "logger": [LoggerConfig("csv", {"save_dir": "logs"})], **KW, **kw})


@pytest.mark.parametrize("fmt", ["torch.save", "pickle"])
def test_a_crafted_checkpoint_given_to_fit_runs_no_code(workdir, fmt):
    marker, path = workdir / "code-ran", workdir / "crafted.ckpt"
    state = {"global_step": 5, "autotimm": {"run_name": "version_0"}, "payload": Crafted(marker)}
    if fmt == "torch.save": torch.save(state, path)
    else: path.write_bytes(pickle.dumps(state))
    with pytest.raises(ValueError, match="holds more than tensors and plain values") as e:
        trainer().fit(model(), datamodule=digits(), ckpt_path=str(path))
    assert "crafted.ckpt" in str(e.value) and "weights_only=False" in str(e.value)
    assert not marker.exists()


def test_a_crafted_last_ckpt_beside_a_good_checkpoint_runs_no_code(workdir):
    every = ModelCheckpoint(monitor="step", mode="max", save_top_k=-1, filename="every-{epoch}")  # epoch 0 kept
    trainer(callbacks=[every]).fit(model(), datamodule=digits())
    run = workdir / "logs" / "lightning_logs" / "version_0"
    good = run / "checkpoints" / "every-epoch=0.ckpt"
    ckpt = torch.load(good, map_location="cpu", weights_only=True)  # everything autotimm stores is plain
    assert ckpt["autotimm"]["run_name"] == "version_0" and ckpt["global_step"] == 3

    marker = workdir / "code-ran"
    torch.save({"global_step": 6, "payload": Crafted(marker)}, run / "checkpoints" / "last.ckpt")  # planted
    # the run's folder says which step is its newest: the planted file is not even opened
    trainer().fit(model(), datamodule=digits(), ckpt_path=str(good))
    assert not marker.exists()
    # a checkpoint whose run folder keeps no progress: the `last.ckpt` beside it is read safely, and refused
    (run / PROGRESS_FILE).unlink()
    with pytest.raises(ValueError, match="last.ckpt of this run .* holds more than tensors") as e:
        trainer().fit(model(), datamodule=digits(), ckpt_path=str(good))
    assert "on_resume='fork'" in str(e.value)
    assert not marker.exists()
    trainer(on_resume="fork").fit(model(), datamodule=digits(), ckpt_path=str(good))  # decided without it
    assert not marker.exists()


def test_a_file_of_your_own_with_other_objects_is_lightnings_to_load_when_you_say_so(workdir):
    "`fit(..., weights_only=False)` is Lightning's own choice: it loads the file as asked; autotimm reads nothing unsafe from it."
    from fractions import Fraction
    first = trainer()
    first.fit(model(), datamodule=digits())
    ckpt = torch.load(first.last_checkpoint, map_location="cpu", weights_only=True)
    ckpt["hyper_parameters"]["my_ratio"] = Fraction(1, 3)  # an object of the user's own: not a plain value
    torch.save(ckpt, workdir / "mine.ckpt")
    with pytest.raises(ValueError, match="holds more than tensors and plain values"):
        trainer(max_epochs=3).fit(model(), datamodule=digits(), ckpt_path=str(workdir / "mine.ckpt"))
    again = trainer(max_epochs=3)
    with pytest.warns(UserWarning, match="loaded by Lightning with weights_only=False as asked"):
        again.fit(model(), datamodule=digits(), ckpt_path=str(workdir / "mine.ckpt"), weights_only=False)
    assert again.global_step == 9 and again.current_epoch == 3  # Lightning restored it: trained on from step 6
