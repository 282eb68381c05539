"""ImageClassifier's keys: learning rate per param group, gradient norm before clipping, the loss handed to Lightning where
it is read, the validation loss's mean over images; fast failure of pretrained weights offline."""
import threading
import time

import pandas as pd
import pytest
import pytorch_lightning as pl
import torch

from autotimm import AutoTrainer, ImageClassifier, ImageDataModule, LoggerConfig, LoggingConfig
from readers import csv_scalars


def _fit(model, **kw):
    trainer = AutoTrainer(max_epochs=1, logger=[LoggerConfig("csv", {"save_dir": "logs"})], enable_progress_bar=False,
                          limit_train_batches=6, limit_val_batches=2, **kw)
    trainer.fit(model, datamodule=ImageDataModule(dataset_name="digits", image_size=16, batch_size=32))
    return csv_scalars(trainer.logger.log_dir)


def test_lr_per_param_group(workdir):
    class TwoGroups(ImageClassifier):
        def configure_optimizers(self):
            head = list(self.model.get_classifier().parameters())
            ids = {id(p) for p in head}
            body = [p for p in self.parameters() if id(p) not in ids]
            return torch.optim.SGD([{"params": body, "lr": 0.01}, {"params": head, "lr": 0.1}])
    got = _fit(TwoGroups(backbone="test_resnet", num_classes=10, pretrained=False))
    assert [v for _, v in got["train/lr"]] == [pytest.approx(0.01)]  # 6 steps < 50: lowered interval, one point
    assert got["train/lr/pg0"][0][1] == pytest.approx(0.01) and got["train/lr/pg1"][0][1] == pytest.approx(0.1)


def test_grad_norm_is_taken_before_clipping(workdir):
    model = ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False, lr=1e-3,
                            logging_config=LoggingConfig(log_gradient_norm=True, log_weight_norm=True))
    got = _fit(model, gradient_clip_val=1e-3, log_every_n_steps=1)
    assert len(got["train/grad_norm"]) == 6
    assert min(v for _, v in got["train/grad_norm"]) > 1e-2  # clipped norms would be <= 1e-3
    assert len(got["train/weight_norm"]) == 6


def test_pretrained_weights_unreachable_fails_fast_naming_the_fix(monkeypatch):
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens: refused at once
    monkeypatch.setenv("HF_HOME", "/nonexistent-cache")
    main, sleep, slept = threading.current_thread(), time.sleep, []
    monkeypatch.setattr(time, "sleep", lambda s: slept.append(s) if threading.current_thread() is main else sleep(s))
    t = time.perf_counter()
    ImageClassifier(backbone="resnet18", num_classes=10, pretrained=False)  # the same model without weights: the yardstick
    t_build, t = time.perf_counter() - t, time.perf_counter()
    with pytest.raises(RuntimeError, match="Pass pretrained=False"):
        ImageClassifier(backbone="resnet18", num_classes=10)  # pretrained=True is the default
    t_fail = time.perf_counter() - t
    assert slept == []  # no retry loop: Hugging Face's waits 1, 2, 4, 8, 8 s between tries (about 47 s in all)
    # about as long as building the model, plus at most the reachability probe's 3 s (measured on a loaded 2-core
    # machine: 0.4x to 4.1x the build, 3.5 s at most)
    assert t_fail < 8 * t_build + 3, (t_fail, t_build)


def test_expected_keys_follow_the_configs():
    m = ImageClassifier(backbone="test_resnet", pretrained=False,
                        logging_config=LoggingConfig(log_learning_rate=False, log_weight_norm=True))
    assert m.expected_keys() == ["train/loss", "val/loss", "train/weight_norm"]


def test_norms_are_computed_only_on_the_steps_lightning_writes(workdir, monkeypatch):
    calls = []
    real = torch.nn.utils.get_total_norm
    monkeypatch.setattr(torch.nn.utils, "get_total_norm", lambda *a, **k: calls.append(1) or real(*a, **k))
    model = ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False,
                            logging_config=LoggingConfig(log_gradient_norm=True, log_weight_norm=True))
    got = _fit(model, log_every_n_steps=3)  # 6 steps: written at steps 3 and 6
    assert len(got["train/grad_norm"]) == 2 and len(got["train/weight_norm"]) == 2 and len(got["train/lr"]) == 2
    assert len(calls) == 4  # grad and weight norm, twice: nothing computed on the other 4 steps


class Seen(pl.Callback):
    "What a user's callback sees: each training batch's loss, the progress bar's and the epoch-end `train/loss`."
    def __init__(self): self.losses, self.bar, self.epoch_end, self.val = [], [], [], []
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses.append(float(outputs["loss"]))
        self.bar.append(trainer.progress_bar_metrics.get("train/loss"))
    def on_train_epoch_end(self, trainer, pl_module): self.epoch_end.append(float(trainer.callback_metrics["train/loss"]))
    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if not trainer.sanity_checking: self.val.append((float(outputs["loss"]), len(batch[1])))


class CountedLog(ImageClassifier):
    "An ImageClassifier that counts the `train/loss` values it hands to Lightning."
    def log(self, name, value, *a, **k):
        if name == "train/loss": self.handed = getattr(self, "handed", 0) + 1
        return super().log(name, value, *a, **k)


def _fit_seen(model, **kw):
    seen = Seen()
    trainer = AutoTrainer(max_epochs=2, logger=[LoggerConfig("csv", {"save_dir": "logs"})], callbacks=[seen],
                          limit_train_batches=7, log_every_n_steps=3, **kw)
    trainer.fit(model, datamodule=ImageDataModule(dataset_name="digits", image_size=16, batch_size=32))
    return seen, csv_scalars(trainer.logger.log_dir)


def test_train_loss_is_handed_to_lightning_only_on_the_steps_someone_reads(workdir):
    model = CountedLog(backbone="test_resnet", num_classes=10, pretrained=False)
    seen, got = _fit_seen(model, enable_progress_bar=False)
    # 14 steps, written at steps 3, 6, 9 and 12: each point is that step's own loss
    assert got["train/loss"] == [(s - 1, pytest.approx(seen.losses[s - 1], rel=1e-6)) for s in (3, 6, 9, 12)]
    # each epoch's last batch too, for the callbacks that read `train/loss` at the epoch's end (EarlyStopping, checkpoints)
    assert seen.epoch_end == [pytest.approx(seen.losses[6], rel=1e-6), pytest.approx(seen.losses[13], rel=1e-6)]
    assert model.handed == 6  # 4 written + 2 epoch ends; nothing on the other 8 steps


def test_a_progress_bar_shows_every_step_s_loss(workdir):
    model = CountedLog(backbone="test_resnet", num_classes=10, pretrained=False)
    seen, got = _fit_seen(model, enable_progress_bar=True)
    assert seen.bar == [pytest.approx(x, rel=1e-6) for x in seen.losses] and model.handed == 14
    assert [s for s, _ in got["train/loss"]] == [2, 5, 8, 11]


def test_val_loss_is_the_mean_over_images_and_a_nan_stays_visible(workdir):
    seen, got = _fit_seen(ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False), enable_progress_bar=False)
    assert [n for _, n in seen.val[:9]] == [32] * 8 + [10]  # 266 images: the last batch is smaller
    assert len(got["val/loss"]) == 2  # one value an epoch
    for epoch, (_, v) in enumerate(got["val/loss"]):
        batches = seen.val[9 * epoch: 9 * epoch + 9]
        assert v == pytest.approx(sum(l * n for l, n in batches) / 266, rel=1e-5)

    class NanOnce(ImageClassifier):
        def validation_step(self, batch, batch_idx):
            if batch_idx == 3 and not self.trainer.sanity_checking: batch = (batch[0] * float("nan"), batch[1])
            return super().validation_step(batch, batch_idx)
    model = NanOnce(backbone="test_resnet", num_classes=10, pretrained=False)
    trainer = AutoTrainer(max_epochs=1, logger=[LoggerConfig("csv", {"save_dir": "logs2"})], enable_progress_bar=False,
                          limit_train_batches=2)
    trainer.fit(model, datamodule=ImageDataModule(dataset_name="digits", image_size=16, batch_size=32))
    written = pd.read_csv(f"{trainer.logger.log_dir}/metrics.csv", keep_default_na=False)["val/loss"]
    assert [v for v in written if v != ""] == ["nan"]  # the epoch's val/loss is written, as NaN, not the mean of the rest
