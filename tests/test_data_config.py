"""The backbone's own data config: normalization, size and interpolation come from the model being trained."""
import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_lightning import Callback

from autotimm import AutoTrainer, ImageClassifier, ImageDataModule, LoggerConfig
from autotimm.data import IMAGENET_MEAN, IMAGENET_STD

GREY = (200, 120, 40)  # every image one colour, so a normalized pixel is known exactly


def one_colour_folders(root, n=4):
    for split in ("train", "val"):
        for c in ("a", "b"):
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n): Image.fromarray(np.full((40, 40, 3), GREY, np.uint8)).save(d / f"{i}.png")
    return root


class Batches(Callback):
    "Keep the first training and validation batch the model receives."
    def __init__(self): self.train = self.val = None
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.train is None: self.train = batch[0].clone()
    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        if self.val is None and not trainer.sanity_checking: self.val = batch[0].clone()


def fit(backbone, root, **dm_kwargs):
    dm = ImageDataModule(data_dir=str(root / "data"), batch_size=4, num_workers=0, **dm_kwargs)  # made before the model
    model = ImageClassifier(backbone=backbone, num_classes=2, pretrained=False)
    seen = Batches()
    trainer = AutoTrainer(max_epochs=1, logger=[LoggerConfig("csv", {"save_dir": str(root / "logs")})], callbacks=[seen],
                          limit_train_batches=1, limit_val_batches=1, num_sanity_val_steps=0, enable_progress_bar=False,
                          enable_checkpointing=False, default_root_dir=str(root))
    trainer.fit(model, datamodule=dm)
    return dm, model, seen


def expected(mean, std): return [(g / 255 - m) / s for g, m, s in zip(GREY, mean, std)]


def test_a_backbone_with_mean_one_half_gets_its_own_normalization_and_size(workdir):
    one_colour_folders(workdir / "data")
    dm, model, seen = fit("test_vit", workdir)
    cfg = model.data_config()
    assert cfg["mean"] == (0.5, 0.5, 0.5) != IMAGENET_MEAN and cfg["interpolation"] == "bicubic"
    assert dm.mean == (0.5, 0.5, 0.5) and dm.data_config["interpolation"] == "bicubic"
    assert tuple(seen.val.shape[1:]) == cfg["input_size"]  # the backbone's input size (no image_size given)
    centre = seen.val[0, :, 80, 80].tolist()
    assert centre == pytest.approx(expected((0.5,) * 3, (0.5,) * 3), abs=1e-3)
    assert dm.hparams["mean"] == [0.5, 0.5, 0.5] and dm.hparams["image_size"] == cfg["input_size"][-1]
    assert "RandomResizedCrop" in repr(dm.transforms["train"]) and "RandomResizedCrop" not in repr(dm.transforms["eval"])


def test_an_imagenet_backbone_keeps_imagenet_normalization_and_augment_can_be_off(workdir):
    one_colour_folders(workdir / "data")
    dm, model, seen = fit("resnet18", workdir, image_size=64, augment=False)
    assert model.data_config()["mean"] == IMAGENET_MEAN and dm.std == IMAGENET_STD
    assert tuple(seen.train.shape[1:]) == (3, 64, 64) == tuple(seen.val.shape[1:])  # image_size, when given, wins
    for batch in (seen.train, seen.val):  # augment=False: training sees the evaluation transform
        assert batch[0, :, 32, 32].tolist() == pytest.approx(expected(IMAGENET_MEAN, IMAGENET_STD), abs=1e-3)
    assert repr(dm.transforms["train"]) == repr(dm.transforms["eval"]) and dm.hparams["augment"] is False


def test_your_own_transforms_are_kept(workdir):
    from torchvision import transforms as T
    one_colour_folders(workdir / "data")
    mine = T.Compose([T.Resize((32, 32)), T.ToTensor()])
    dm, model, seen = fit("test_vit", workdir, train_transform=mine, eval_transform=mine)
    assert dm.transforms["train"] is mine and tuple(seen.val.shape[1:]) == (3, 32, 32)
    assert seen.val[0, :, 16, 16].tolist() == pytest.approx([g / 255 for g in GREY], abs=1e-3)
