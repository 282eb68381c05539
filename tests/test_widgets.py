"""The logger form, the confusion-matrix viewer and the live view, driven without a browser."""
import json

import pytest
from pytorch_lightning import Callback

from autotimm import (AutoTrainer, ConfusionMatrixViewer, ImageClassifier, ImageDataModule, LoggerConfig, LoggerForm,
                      LoggingConfig, show_confusion_matrix)
from autotimm.delivery import lightning_class
from autotimm.live import LiveView
from helpers import ctrl_c


def field(form, backend, name): return form.sections[backend].fields[name][1]


def test_form_builds_the_configs_a_user_filled_in():
    form = LoggerForm()
    form.sections["tensorboard"].enabled.value = True
    field(form, "tensorboard", "save_dir").value = "logs/tb"
    field(form, "tensorboard", "default_hp_metric").value = False
    form.sections["mlflow"].enabled.value = True
    field(form, "mlflow", "experiment_name").value = "exp1"
    field(form, "mlflow", "tracking_uri").value = "http://127.0.0.1:5000"
    field(form, "mlflow", "tags").value = "env=dev, team=vision"
    form.button.click()
    assert form.configs == [
        LoggerConfig("mlflow", {"experiment_name": "exp1", "tracking_uri": "http://127.0.0.1:5000",
                                "tags": {"env": "dev", "team": "vision"}, "save_dir": "runs/mlruns"}),
        LoggerConfig("tensorboard", {"save_dir": "logs/tb", "name": "lightning_logs", "log_graph": False,
                                     "default_hp_metric": False}),
    ]
    code = form.code_area.value
    assert form.code_area.layout.display is None and "LoggerConfig(backend='tensorboard'" in code
    ns = {}
    exec(code, ns)  # the code shown is the same configs
    assert ns["loggers"] == form.configs


def error(form, backend, name):
    "The message a user sees beside a field: '' when there is none (a grey help line is no error)."
    import re
    html = form.sections[backend].errors[name].value
    return re.sub(r"<[^>]+>", "", html).replace("&#x27;", "'").removeprefix("⚠ ") if "autotimm-error" in html else ""


def test_invalid_fields_show_a_plain_message_beside_the_field_and_build_nothing():
    form = LoggerForm()
    form.sections["wandb"].enabled.value = True
    assert error(form, "wandb", "project") == "Required"
    field(form, "wandb", "project").value = "p"
    assert error(form, "wandb", "project") == ""
    form.sections["csv"].enabled.value = True
    field(form, "csv", "save_dir").value = ""
    assert error(form, "csv", "save_dir") == "Required"
    form.button.click()
    assert "Not built: fix the fields marked ⚠: csv save_dir: Required" in form.status.value
    with pytest.raises(ValueError, match="no configs built: the last build failed: .*csv save_dir: Required"): form.configs
    assert form.code_area.layout.display == "none"
    with pytest.raises(ValueError, match="csv save_dir: Required"): form.to_configs()


def test_the_tracking_uri_message_stands_beside_tracking_uri():
    form = LoggerForm()
    form.sections["mlflow"].enabled.value = True
    field(form, "mlflow", "experiment_name").value = "exp"
    field(form, "mlflow", "tracking_uri").value = "file:///tmp/mlruns"
    msg = error(form, "mlflow", "tracking_uri")
    assert msg.startswith("Uses MLflow's file store, which MLflow 3 refuses.") and "Leave tracking_uri empty" in msg
    assert "params[" not in msg and "LoggerConfig(" not in msg
    assert form.sections["mlflow"].message.value == "" and error(form, "mlflow", "save_dir") == ""
    field(form, "mlflow", "tracking_uri").value = "http://127.0.0.1:5000"
    assert error(form, "mlflow", "tracking_uri") == ""


def test_a_build_error_goes_as_soon_as_the_field_is_fixed_and_a_build_goes_stale_on_any_edit():
    form = LoggerForm()
    form.sections["mlflow"].enabled.value = True
    form.button.click()
    assert "Not built" in form.status.value and "experiment_name" in form.status.value
    field(form, "mlflow", "experiment_name").value = "exp"  # fixed: the build error is gone
    assert form.status.value == "" and error(form, "mlflow", "experiment_name") == ""
    form.button.click()
    assert "Built 1 config" in form.status.value and "experiment_name='exp'" not in form.code_area.value
    assert "'experiment_name': 'exp'" in form.code_area.value
    built = form.configs
    for run_name in ("r2", "r3"):  # any edit, the second as the first: still the last build, and the line says so
        field(form, "mlflow", "run_name").value = run_name
        assert "Built" not in form.status.value and "Changed since the last build" in form.status.value
        assert form.configs is built and form.code_area.value == "" and form.code_area.layout.display == "none"
    form.button.click()
    assert "'run_name': 'r3'" in form.code_area.value and form.configs[0].params["run_name"] == "r3"
    field(form, "mlflow", "experiment_name").value = ""  # made invalid: the last build stays, marked changed
    assert "Changed since the last build" in form.status.value and form.configs[0].params["experiment_name"] == "exp"
    assert error(form, "mlflow", "experiment_name") == "Required" and form.code_area.layout.display == "none"
    form.button.click()  # a failed build: nothing to hand out, and the reason
    with pytest.raises(ValueError, match="the last build failed: .*experiment_name: Required"): form.configs


@pytest.mark.parametrize("typed, says", [("abc", "Not a whole number"), ("1.5", "Not a whole number"),
                                         ("-5", "Must be 1 or more, not -5"), ("0", "Must be 1 or more, not 0")])
def test_a_number_field_refuses_a_bad_value_and_keeps_what_was_typed(typed, says):
    form = LoggerForm()
    form.sections["csv"].enabled.value = True
    n = field(form, "csv", "flush_logs_every_n_steps")
    n.value = typed
    assert error(form, "csv", "flush_logs_every_n_steps") == says
    assert n.value == typed  # never silently another number
    with pytest.raises(ValueError, match=f"csv flush_logs_every_n_steps: {says}"): form.to_configs()
    n.value = "50"
    assert error(form, "csv", "flush_logs_every_n_steps") == "" and form.to_configs()[0].params["flush_logs_every_n_steps"] == 50


def test_every_local_folder_goes_under_the_root_and_runs_lists_them_all(workdir):
    form = LoggerForm()
    folders = {b: field(form, b, "save_dir").value for b in form.sections}
    assert folders == {"tensorboard": "runs/tb", "csv": "runs/csv", "wandb": "runs/wandb", "mlflow": "runs/mlruns", "comet": "runs/comet"}
    assert "%autotimm runs runs lists every run" in form.root_slot.value
    field(form, "csv", "save_dir").value = "mine"  # typed by hand: kept when the root changes
    form.root.value = "exp"
    assert field(form, "tensorboard", "save_dir").value == "exp/tb" and field(form, "csv", "save_dir").value == "mine"
    assert "%autotimm runs exp" in form.root_slot.value
    field(form, "csv", "save_dir").value = "exp/csv"
    for b in ("tensorboard", "csv", "mlflow", "wandb"): form.sections[b].enabled.value = True
    field(form, "mlflow", "experiment_name").value = "e"
    field(form, "wandb", "project").value = "p"
    trainer = AutoTrainer(max_epochs=1, logger=form, live=False, enable_progress_bar=False, enable_model_summary=False,
                          limit_train_batches=2, limit_val_batches=1, run_name="under-root")
    trainer.fit(ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False),
                datamodule=ImageDataModule(dataset_name="digits", image_size=32, batch_size=32))
    from autotimm import find_runs
    runs = find_runs("exp")
    assert len(runs) == 1 and all(isinstance(runs.loc[0, b], str) for b in ("tensorboard", "csv", "mlflow", "wandb"))


def test_form_with_nothing_enabled_builds_nothing():
    form = LoggerForm()
    form.button.click()
    assert "no backend is enabled" in form.status.value
    with pytest.raises(ValueError, match="no backend is enabled"): form.configs


def test_form_prefill_manager_and_trainer(workdir):
    cfgs = [LoggerConfig("csv", {"save_dir": "logs", "name": "n", "flush_logs_every_n_steps": 5}),
            LoggerConfig("wandb", {"project": "p", "tags": ["a", "b"], "offline": True})]
    form = LoggerForm(configs=cfgs)
    assert form.to_configs() == [cfgs[0], LoggerConfig("wandb", {"project": "p", "tags": ["a", "b"], "save_dir": "runs/wandb", "offline": True})]
    assert [lightning_class(l).__name__ for l in form.to_manager()] == ["CSVLogger", "WandbLogger"]
    t = AutoTrainer(max_epochs=1, logger=form, enable_progress_bar=False)
    assert [lightning_class(l).__name__ for l in t.loggers] == ["CSVLogger", "WandbLogger"]


@pytest.fixture
def trained(workdir):
    model = ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False,
                            logging_config=LoggingConfig(log_confusion_matrix=True))
    live = LiveView(min_interval=0.0, show=False)
    trainer = AutoTrainer(max_epochs=2, logger=[LoggerConfig("csv", {"save_dir": "logs"}), LoggerConfig("tensorboard", {"save_dir": "tb"})],
                          callbacks=[live], enable_progress_bar=False, limit_train_batches=5)
    trainer.fit(model, datamodule=ImageDataModule(dataset_name="digits", image_size=16, batch_size=32))
    return trainer, live


def test_counts_are_stored_per_epoch_and_rerendered(trained):
    trainer, _ = trained
    run = trainer.logger.log_dir
    records = [json.loads(open(f"{run}/val_confusion_matrix_epoch_{e:03d}.json").read()) for e in (0, 1)]
    assert [r["epoch"] for r in records] == [0, 1] and records[0]["labels"] == [str(i) for i in range(10)]
    n_val = len(trainer.datamodule.val_ds)
    assert all(sum(map(sum, r["counts"])) == n_val for r in records)
    acc = sum(records[1]["counts"][i][i] for i in range(10)) / n_val
    fig = show_confusion_matrix(trainer)  # from the trainer's loggers
    assert f"accuracy {acc:.1%}" in fig.axes[0].get_title()
    assert show_confusion_matrix(run, epoch=1, normalize=False).axes[0].texts[0].get_text() == str(records[0]["counts"][0][0])
    assert "tb" in str(trainer.loggers[1].log_dir)  # TensorBoard keeps the counts too
    import glob
    assert len(glob.glob(f"{trainer.loggers[1].log_dir}/val_confusion_matrix_epoch_*.json")) == 2


def test_viewer_slider_redraws(trained):
    trainer, _ = trained
    v = ConfusionMatrixViewer(trainer.logger.log_dir)
    assert v.slider.options == (("1", 0), ("2", 1)) and v.slider.value == 1 and v.slider.label == "2"
    last = v.image.value
    v.slider.value = 0
    assert v.image.value != last
    v.normalize.value = False
    assert v.image.value[:4] == b"\x89PNG"


def test_live_view_keeps_history_and_measures_its_cost(trained):
    trainer, live = trained
    assert [e for e, _ in live.history["val/loss"]] == [1, 2]  # epochs as a person counts them
    # its own work is a small part of each epoch's time, on a busy machine too (measured on a loaded 2-core one: 1% at most)
    shares = [c / row["time"] for c, row in zip(live.cost_s, live.rows)]
    assert len(shares) == 2 and all(0 < s < 0.25 for s in shares), (live.cost_s, live.rows)
    assert live._curves[:4] == b"\x89PNG" and live._cm[:4] == b"\x89PNG"


class LossRecorder(Callback):
    "The loss of every training batch, per epoch, as the model returned it."
    def __init__(self): self.losses = {}
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses.setdefault(trainer.current_epoch, []).append(float(outputs["loss"]))


def test_table_rows_have_the_mean_train_loss_of_their_epoch(workdir):
    live, rec = LiveView(min_interval=0.0, show=False), LossRecorder()
    trainer = AutoTrainer(max_epochs=3, logger=False, callbacks=[live, rec], enable_progress_bar=False, enable_checkpointing=False,
                          limit_train_batches=4, limit_val_batches=2)
    trainer.fit(ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False),
                datamodule=ImageDataModule(dataset_name="digits", image_size=16, batch_size=32))
    assert [r["epoch"] for r in live.rows] == [1, 2, 3]
    for e, row in enumerate(live.rows):
        assert row["train/loss"] == pytest.approx(sum(rec.losses[e]) / 4)  # the epoch's mean, not its last batch
        assert row["train/loss"] != pytest.approx(rec.losses[e][-1])
    text = live.html["text"]
    assert text.count("<tr") == 1 + 3 and "Epoch 3/3" in text and "<progress" in text and "validate" in text
    best = min(live.rows, key=lambda r: r["val/loss"])["epoch"]
    assert f"<td style=\"text-align:right;padding:1px 8px\">{best} ★</td>" in text and "best epoch by val/loss (min)" in text
    assert f"✔ <b>Trained 3 epochs in" in text and f"best epoch {best}: val/loss" in text
    import re
    table = text[text.index('class="autotimm-epochs"'):text.index("</table>")]
    rows = [re.findall(r"<td[^>]*>([^<]*)</td>", r) for r in table.split("<tr")[2:]]
    for col in range(1, len(rows[0]) - 1):  # each number column: one precision, every row (1.0 never shown as "1")
        places = {len(r[col].split(".")[1]) if "." in r[col] else 0 for r in rows}
        assert len(places) == 1 and places != {0}, (col, [r[col] for r in rows])
    shown = re.search(rf"best epoch {best}: val/loss ([0-9.]+)", text)[1]  # as many places as its column
    assert len(shown.split(".")[1]) == len(rows[0][2].split(".")[1]), (shown, rows[0][2])


def test_the_best_epoch_follows_the_checkpoint_monitor(workdir):
    live = LiveView(min_interval=0.0, show=False)
    trainer = AutoTrainer(max_epochs=2, logger=[LoggerConfig("csv", {"save_dir": "logs"})], callbacks=[live], run_name="my-run",
                          checkpoint_monitor="val/loss", checkpoint_mode="max", enable_progress_bar=False,
                          limit_train_batches=3, limit_val_batches=2)
    trainer.fit(ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False),
                datamodule=ImageDataModule(dataset_name="digits", image_size=16, batch_size=32))
    best = max(live.rows, key=lambda r: r["val/loss"])
    assert live.best() == (best["epoch"], best["val/loss"]) and "best epoch by val/loss (max)" in live.html["text"]
    done = live.html["text"].split("✔", 1)[1]
    assert trainer.checkpoint_callback.best_model_path in done and "my-run" in done and trainer.logger.log_dir in done


def test_an_interrupted_view_says_so_with_the_epoch_counted_from_1(workdir):
    live = LiveView(min_interval=0.0, show=False)
    trainer = AutoTrainer(max_epochs=4, logger=False, callbacks=[live, ctrl_c(epoch=1, batch=2)], enable_progress_bar=False,
                          enable_checkpointing=False, limit_train_batches=3, limit_val_batches=1)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False),
                    datamodule=ImageDataModule(dataset_name="digits", image_size=16, batch_size=32))
    text = live.html["text"]
    assert "⏹ <b>Interrupted at epoch 2/4</b> (step 5)" in text and "✔" not in text
    assert [r["epoch"] for r in live.rows] == [1]
    import logging
    assert not any(type(h).__name__ == "_Fold" for h in logging.getLogger("pytorch_lightning").handlers)  # Lightning's output is back


def test_text_and_pictures_are_separate_outputs_and_pictures_go_when_drawn(monkeypatch, workdir):
    import autotimm.live as live_mod
    shown, updates = [], []
    class Handle:
        def __init__(self, n): self.n = n
        def update(self, obj): updates.append((self.n, obj))
    monkeypatch.setattr(live_mod, "display", lambda obj, display_id=False: shown.append(obj) or Handle(len(shown) - 1))
    live = LiveView(min_interval=0.0)
    trainer = AutoTrainer(max_epochs=3, logger=False, callbacks=[live], enable_progress_bar=False, limit_train_batches=3, limit_val_batches=2)
    trainer.fit(ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False, logging_config=LoggingConfig(log_confusion_matrix=True)),
                datamodule=ImageDataModule(dataset_name="digits", image_size=16, batch_size=32))
    assert len(shown) == 3  # Lightning's folded lines, the text, the pictures
    log = [o for n, o in updates if n == 0][-1].data  # filled in once Lightning has spoken
    assert log == live.html["log"] and "Lightning:" in log and "model summary" in log and "<details" in log
    pictures = [o for n, o in updates if n == 2]
    # as they are drawn (in the helper process, never waited for): at most the curves and the matrix of each epoch,
    # not with every refresh of the text; the last epoch's at the end
    assert 1 <= len(pictures) == live.picture_updates <= 2 * 3
    cm = next(cb for cb in trainer.callbacks if type(cb).__name__ == "ConfusionMatrixLogger")
    assert live._cm is cm.last_png and cm.png_counts is cm.last_counts and pictures[-1].data == live.html["pictures"]
    assert all("data:image/png" not in o.data for n, o in updates if n == 1)  # the text never carries a picture
    assert 1 + len([1 for n, _ in updates if n == 1]) == live.text_updates > 3 * 3  # its first display, then updates
    sent = sum(len(o.data.encode()) for o in shown) + sum(len(o.data.encode()) for _, o in updates)
    assert live.bytes_sent == sent


def test_live_is_off_outside_a_kernel_and_switchable():
    names = lambda t: [type(c).__name__ for c in t.callbacks]
    assert "LiveView" not in names(AutoTrainer(logger=False))
    assert "LiveView" in names(AutoTrainer(logger=False, live=True))


def test_the_train_bar_shows_the_running_loss_and_the_prog_bar_metrics(workdir):
    "As fastai and HF show it: the epoch's running mean loss, and each `MetricConfig(prog_bar=True)` metric, on the bar."
    from autotimm import MetricConfig
    live = LiveView(min_interval=0.0, show=False)
    seen = []
    class Look(Callback):
        def on_train_batch_end(self, trainer, *a):
            if trainer.current_epoch == 1 and a[-1] == 3: seen.append((live._text_html(trainer), live._loss_sum / live._loss_n))
    model = ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False,
                            metrics=[MetricConfig(name="accuracy", metric_class="Accuracy", params={"task": "multiclass"},
                                                  stages=["train"], log_on_step=True, log_on_epoch=False, prog_bar=True)])
    trainer = AutoTrainer(max_epochs=2, logger=False, callbacks=[live, Look()], enable_progress_bar=False, enable_checkpointing=False,
                          limit_train_batches=5, limit_val_batches=1, log_every_n_steps=1)
    trainer.fit(model, datamodule=ImageDataModule(dataset_name="digits", image_size=16, batch_size=32))
    import re
    (text, mean), = seen
    bar = next(b for b in text.split('<div class="autotimm-bar">') if b.startswith('<span style="display:inline-block;min-width:110px">train'))
    shown = re.search(r"\] loss ([0-9.e-]+) · train/accuracy ([0-9.e-]+)</div>", bar)
    assert shown and float(shown[1]) == pytest.approx(float(mean), rel=1e-3), bar  # the running mean of the epoch so far
    assert 0 <= float(shown[2]) <= 1
