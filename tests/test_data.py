"""ImageDataModule on image folders, a torchvision dataset read from local files, and the built-in digits."""
import struct

import numpy as np
import pytest
import torch

from autotimm import ImageDataModule
from helpers import make_image_folders


def test_image_folders_with_val_and_test(image_folders):
    dm = ImageDataModule(data_dir="data", image_size=24, batch_size=5)
    assert dm.check() == 3 and dm.class_names == ["cat", "dog", "fox"]
    dm.setup("fit")
    assert (len(dm.train_ds), len(dm.val_ds), len(dm.test_ds)) == (36, 36, 36)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (5, 3, 24, 24) and y.dtype == torch.long
    assert len(list(dm.test_dataloader())) == 8


def test_val_split_when_there_is_no_val_folder(workdir):
    make_image_folders(workdir / "d", n=20, splits=("train",))
    dm = ImageDataModule(data_dir="d", image_size=16, val_split=0.25, num_workers=0)
    dm.setup("fit")
    assert (len(dm.train_ds), len(dm.val_ds)) == (45, 15)
    assert not set(dm.train_ds.indices) & set(dm.val_ds.indices)
    with pytest.raises(FileNotFoundError, match="no test set"): dm.test_dataloader()


def _write_idx(path, arr):
    "An MNIST idx file (gzip), the format torchvision reads."
    dims = arr.shape
    header = struct.pack(">HBB", 0, 0x08, len(dims)) + b"".join(struct.pack(">I", d) for d in dims)
    with open(path, "wb") as f: f.write(header + arr.astype(np.uint8).tobytes())


def test_torchvision_dataset_by_name_from_local_files(workdir):
    "MNIST through torchvision's own loader, from idx files written here in place of the download."
    raw = workdir / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 40), ("t10k", 10)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 255, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    dm = ImageDataModule(data_dir="data", dataset_name="MNIST", image_size=32, batch_size=8, download=False)
    assert dm.num_classes == 10
    dm.prepare_data(); dm.setup("fit")
    assert (len(dm.train_ds), len(dm.val_ds), len(dm.test_ds)) == (36, 4, 10)
    assert dm.class_names[0].startswith("0") and len(dm.class_names) == 10
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 3, 32, 32)


def test_builtin_digits_is_offline_and_stratified():
    dm = ImageDataModule(dataset_name="digits", image_size=16, batch_size=32)
    dm.setup()
    assert dm.num_workers == 0 and dm.num_classes == 10
    for ds in (dm.train_ds, dm.val_ds, dm.test_ds):
        counts = torch.bincount(ds.labels, minlength=10)
        assert counts.min() > 0.8 * counts.float().mean()
    x, _ = dm.train_ds[0]
    assert x.shape == (3, 16, 16) and -1 <= x.min() and x.max() <= 1
