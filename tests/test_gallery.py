"""What the model gets wrong, after each validation epoch: the misclassified gallery and the per-class table."""
import contextlib

import pytest
import torch
import torch.nn.functional as F

from autotimm import AutoTrainer, ImageClassifier, LoggerConfig, LoggerManager, LoggingConfig, load_run
from autotimm.callbacks import ConfusionMatrixLogger, MisclassifiedLogger
from pytorch_lightning import Callback
from helpers import ctrl_c, digits

COUNT = 8


class OwnMedia(Callback):
    "What a user does from the model during training: send the first validation input and a table, at the trainer's step."
    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if batch_idx == 0 and not trainer.sanity_checking:
            pl_module.log_image("samples/first_input", batch[0][0] * 0.5 + 0.5)  # a CHW tensor in [0, 1]
            pl_module.log_table("samples/first_targets", {"target": batch[1][:4].tolist()})


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("gallery")
    torch.manual_seed(0)
    model = ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False, lr=3e-3,
                            logging_config=LoggingConfig(log_misclassified=True, misclassified_count=COUNT,
                                                         log_per_class_metrics=True, log_confusion_matrix=True))
    dm = digits()
    manager = LoggerManager([LoggerConfig("tensorboard", {"save_dir": str(root / "tb")}),
                             LoggerConfig("csv", {"save_dir": str(root / "csv")})], run_name="gallery")
    trainer = AutoTrainer(max_epochs=2, logger=manager, limit_train_batches=4, enable_progress_bar=False,
                          enable_checkpointing=False, default_root_dir=str(root), callbacks=[OwnMedia()])
    trainer.fit(model, datamodule=dm)
    manager.close()
    tb, csv = manager.loggers
    return dict(model=model, dm=dm, trainer=trainer, runs={"tensorboard": load_run(tb.log_dir), "csv": load_run(csv.log_dir)})


def test_the_gallery_holds_the_highest_loss_misclassified_images(fitted):
    model, dm, trainer = fitted["model"], fitted["dm"], fitted["trainer"]
    cb = next(c for c in trainer.callbacks if isinstance(c, MisclassifiedLogger))
    shown = cb.last
    assert len(shown["target"]) == COUNT
    model.eval()
    with torch.no_grad():  # the model as it was at the last validation epoch (nothing trained after it)
        logits = model(shown["x"])
        assert (logits.argmax(1) == shown["pred"]).all() and (shown["pred"] != shown["target"]).all()
        losses = []
        for x, y in dm.val_dataloader():
            out = model(x)
            loss = F.cross_entropy(out, y, reduction="none")
            losses.append(loss[out.argmax(1) != y])
    worst = torch.cat(losses).sort(descending=True).values[:COUNT]
    assert shown["loss"].sort(descending=True).values.tolist() == pytest.approx(worst.tolist(), rel=1e-4, abs=1e-5)
    for backend, run in fitted["runs"].items():  # one grid per validation epoch, at the step it was made
        steps = [s for s, _ in run.images["val/misclassified"]]
        assert steps == [4, 8], backend
        w, h = run.image("val/misclassified").size
        assert w > 300 and h > 300, backend


def test_the_per_class_table_equals_the_confusion_matrix(fitted):
    for backend, run in fitted["runs"].items():
        assert [s for s, _ in run.tables["val/per_class"]] == [4, 8], backend
        for epoch, (step, table) in enumerate(run.tables["val/per_class"]):
            cm = torch.tensor(run.confusion_matrices[epoch]["counts"], dtype=torch.float64)
            rows = table.set_index("class")
            assert list(table.columns) == ["class", "precision", "recall", "f1", "support"]
            assert sorted(rows.index.astype(str)) == [str(i) for i in range(10)]
            for c in range(10):
                r = rows.loc[c] if c in rows.index else rows.loc[str(c)]
                assert r["support"] == cm[c].sum()
                assert r["recall"] == pytest.approx((cm[c, c] / cm[c].sum()).item(), abs=1e-6)
                p = (cm[c, c] / cm[:, c].sum()).item() if cm[:, c].sum() else 0.0
                assert r["precision"] == pytest.approx(p, abs=1e-6)
            assert table["f1"].tolist() == sorted(table["f1"].tolist()), backend  # worst first


def test_your_own_media_from_the_model_during_training(fitted):
    first = fitted["dm"].val_ds[0][0] * 0.5 + 0.5
    for backend, run in fitted["runs"].items():
        assert [s for s, _ in run.images["samples/first_input"]] == [4, 8], backend  # the trainer's step by default
        img = torch.tensor(list(run.image("samples/first_input").getdata()), dtype=torch.float32)
        assert img.shape == (32 * 32, 3)
        assert (img / 255 - first.permute(1, 2, 0).reshape(-1, 3)).abs().max() < 1 / 255 + 1e-6, backend
        assert run.table("samples/first_targets")["target"].tolist() == [0, 0, 0, 0], backend



def budget_fit(root, budget, epochs=5, callbacks=()):
    "A CSV-only fit of `epochs` epochs with the gallery and the table under `media_budget=budget`: the steps of each, read back."
    model = ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False,
                            logging_config=LoggingConfig(log_misclassified=True, misclassified_count=4,
                                                         log_per_class_metrics=True, media_budget=budget))
    manager = LoggerManager([LoggerConfig("csv", {"save_dir": str(root)})], run_name="budget")
    trainer = AutoTrainer(max_epochs=epochs, logger=manager, limit_train_batches=2, limit_val_batches=2, enable_progress_bar=False,
                          enable_checkpointing=False, default_root_dir=str(root), callbacks=list(callbacks))
    with contextlib.suppress(KeyboardInterrupt):
        trainer.fit(model, datamodule=digits())
    manager.close()
    run = load_run(manager.loggers[0].log_dir)
    return [s for s, _ in run.tables["val/per_class"]], [s for s, _ in run.images["val/misclassified"]]


@pytest.mark.parametrize("budget, kept", [(None, [2, 4, 6, 8, 10]), (1e-9, [2, 10]), (1e-9, [2, 6])],
                         ids=["no budget", "over budget", "over budget, interrupted"])
def test_the_gallery_and_table_keep_within_their_budget_and_the_latest_is_sent(tmp_path, request, budget, kept):
    """No budget: every epoch's. A budget the first epoch already spends: the first and the latest (held, sent at the
    end of `fit`, or at an interrupt: Ctrl-C in epoch 3 after epochs 0-2 were validated)."""
    stop = [ctrl_c(epoch=3)] if "interrupted" in request.node.callspec.id else []
    tables, galleries = budget_fit(tmp_path, budget, callbacks=stop)
    assert tables == galleries == kept
