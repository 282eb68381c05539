"""ImageClassifier's keys: learning rate per param group, gradient norm before clipping; fast failure of pretrained weights offline."""
import time

import pytest
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
    t = time.perf_counter()
    with pytest.raises(RuntimeError, match="Pass pretrained=False"):
        ImageClassifier(backbone="resnet18", num_classes=10)  # pretrained=True is the default
    assert time.perf_counter() - t < 15


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
