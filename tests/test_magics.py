"""`%load_ext autotimm` in a real IPython shell, each magic run and its output checked."""
import re
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

from autotimm import AutoTrainer, ImageClassifier, ImageDataModule, LoggerForm, LoggingConfig, find_runs
from helpers import ctrl_c, local_configs


@pytest.fixture(scope="module")
def ip():
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "autotimm")
    yield shell


def train(run_name, loggers, interrupt=False):
    "Two epochs of test_resnet on the digits at 32 px (interrupted in the second), logging the confusion matrix."
    model = ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False,
                            logging_config=LoggingConfig(log_confusion_matrix=True))
    trainer = AutoTrainer(max_epochs=2, logger=loggers, run_name=run_name, checkpoint_monitor="val/loss", live=False,
                          callbacks=[ctrl_c(epoch=1, batch=1)] if interrupt else [], enable_progress_bar=False,
                          enable_model_summary=False, limit_train_batches=2, limit_val_batches=1)
    try: trainer.fit(model, datamodule=ImageDataModule(dataset_name="digits", image_size=32, batch_size=32))
    except KeyboardInterrupt: pass
    import wandb; wandb.finish()
    return trainer


@pytest.fixture
def run_dir(workdir):
    return train("done", local_configs("runs", "exp"))


def test_runs_magic_shows_one_row_per_run_readably(ip, run_dir):
    train("stopped", local_configs("runs", "exp", ("csv", "tensorboard", "mlflow")), interrupt=True)
    table = ip.run_line_magic("autotimm", "runs runs")
    assert list(table.columns[:9]) == ["run", "date", "status", "duration", "best", "csv", "mlflow", "tensorboard", "wandb"]
    done, stopped = (table.set_index("run").loc[r] for r in ("done", "stopped"))
    assert done["status"] == "finished" and stopped["status"] == "interrupted"  # an interrupted run does not look finished
    assert re.fullmatch(r"\d{4}\u2011\d\d\u2011\d\d\u00a0\d\d:\d\d", done["date"]) and re.fullmatch(r"\d+:\d\d", done["duration"])
    assert done["csv"] == "csv/exp/done" and done["tensorboard"] == "tb/exp/done"  # where, relative to the folder asked about
    assert re.fullmatch(r"mlruns/mlflow\.db run [0-9a-f]{8}…", done["mlflow"]) and re.fullmatch(r"wandb/wandb/offline-run-\w+", done["wandb"])
    assert stopped["wandb"] == ""  # no W&B record for that run
    best = min(float(r["val/loss"]) for r in __import__("csv").DictReader(open("runs/csv/exp/done/metrics.csv")) if r["val/loss"])
    assert done["best"] == pytest.approx(best, abs=1e-4)
    assert done["val/loss"] == pytest.approx(run_dir.callback_metrics["val/loss"].item(), abs=1e-4)
    media = [c for c in table.columns if "confusion" in c or c.endswith(("/height", "/width", "/count", "/format"))]
    assert media == [] and set(table.columns[9:]) == {"train/loss", "val/loss"}  # media never appear as metrics
    raw = find_runs("runs")  # the full values stay one call away
    assert raw.set_index("run").loc["done", "csv"].endswith("runs/csv/exp/done") and not any("confusion" in c for c in raw.columns)


def test_an_interrupted_wandb_run_reads_back_as_interrupted(workdir):
    train("stopped", local_configs("runs", "exp", ("wandb",)), interrupt=True)
    assert find_runs("runs").loc[0, "status"] == "interrupted"


def test_cm_magic_shows_the_latest_matrix(ip, run_dir):
    fig = ip.run_line_magic("autotimm", "cm runs/csv")
    assert fig.axes[0].get_title().startswith("Confusion matrix of runs/csv/exp/done, epoch 2")  # which run, which epoch


def test_loggers_magic_gives_a_form(ip):
    assert isinstance(ip.run_line_magic("autotimm", "loggers"), LoggerForm)


def test_help(ip, capsys):
    ip.run_line_magic("autotimm", "")
    assert "%autotimm runs [DIR]" in capsys.readouterr().out
    ip.run_line_magic("autotimm", "nonsense")
    assert "unknown command 'nonsense'" in capsys.readouterr().out
    ip.run_cell("%autotimm?")
    assert "%autotimm cm [RUN]" in capsys.readouterr().out


def test_no_runs(ip, workdir, capsys):
    assert ip.run_line_magic("autotimm", f"runs {workdir}").empty
    assert "no runs found" in capsys.readouterr().out


def test_errors_are_one_line(ip, workdir, capsys):
    assert ip.run_line_magic("autotimm", "runs nowhere") is None
    out = capsys.readouterr()
    assert out.err == "%autotimm runs: find_runs: nowhere does not exist (%autotimm help: usage)\n" and out.out == ""
    ip.run_line_magic("autotimm", "cm nowhere")
    err = capsys.readouterr().err
    assert err.startswith("%autotimm cm: no stored confusion matrix") and err.count("\n") == 1 and "Traceback" not in err
    (workdir / "a file.txt").write_text("x")
    for line, says in [("runs 'a file.txt'", f"%autotimm runs: find_runs: a file.txt is a file; give the folder the runs are under, e.g. '.'"),
                       ("runs a file.txt", "%autotimm runs: takes one folder at most, got a file.txt"),  # unquoted: two arguments
                       ("cm . extra", "%autotimm cm: takes one run folder at most, got . extra"),
                       ("loggers now", "%autotimm loggers: takes no argument, got now")]:
        assert ip.run_line_magic("autotimm", line) is None
        out = capsys.readouterr()
        assert out.err.startswith(says) and out.err.count("\n") == 1 and out.out == "", (line, out)


@pytest.fixture
def fake_colab(monkeypatch):
    "A stand-in `google.colab` whose only part is the call autotimm makes; the calls it got."
    import sys, types
    import autotimm.utils as form_mod
    calls = []
    colab = types.ModuleType("google.colab")
    colab.output = types.SimpleNamespace(enable_custom_widget_manager=lambda: calls.append("enabled"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setattr(form_mod, "_colab_widgets_on", False)
    return calls


def test_in_colab_load_ext_enables_the_custom_widget_manager_once(ip, fake_colab):
    ip.run_line_magic("reload_ext", "autotimm")  # what `%load_ext autotimm` runs
    assert fake_colab == ["enabled"]  # before any widget is shown
    ip.run_line_magic("autotimm", "loggers")._ipython_display_()
    LoggerForm()._ipython_display_()
    ip.run_line_magic("reload_ext", "autotimm")
    assert fake_colab == ["enabled"]


def test_in_colab_a_form_shown_first_enables_it(fake_colab):
    LoggerForm()._ipython_display_()
    LoggerForm()._ipython_display_()
    assert fake_colab == ["enabled"]


def test_outside_colab_nothing_is_called(ip, monkeypatch):
    import sys
    import autotimm.utils as form_mod
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(form_mod, "_colab_widgets_on", False)
    ip.run_line_magic("reload_ext", "autotimm")
    assert form_mod.enable_colab_widgets() is False and form_mod._colab_widgets_on is False


def test_two_runs_of_one_name_in_two_folders_are_two_rows(workdir):
    "A run's backends are joined by the run's identity (its manifest's id), not its name; each row dated from its own start."
    for folder in ("runs/a", "runs/b"): train("same", local_configs(folder, "exp", ("csv", "tensorboard")))
    runs = find_runs("runs")
    assert runs["run"].tolist() == ["same", "same"], runs
    for (_, row), folder in zip(runs.iterrows(), ("runs/a", "runs/b")):
        for b in ("csv", "tensorboard"): assert Path(row[b]).resolve().is_relative_to(Path(folder).resolve()), (b, row[b])
    assert runs["date"].is_monotonic_increasing and runs["duration_s"].notna().all()
