"""`%load_ext autotimm` in a real IPython shell, each magic run and its output checked."""
import pytest
from IPython.core.interactiveshell import InteractiveShell

from autotimm import AutoTrainer, ImageClassifier, ImageDataModule, LoggerConfig, LoggerForm, LoggingConfig


@pytest.fixture(scope="module")
def ip():
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "autotimm")
    yield shell


@pytest.fixture
def run_dir(workdir):
    model = ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False,
                            logging_config=LoggingConfig(log_confusion_matrix=True))
    trainer = AutoTrainer(max_epochs=1, enable_progress_bar=False, limit_train_batches=4, logger=[
        LoggerConfig("csv", {"save_dir": "runs/csv", "name": "exp"}), LoggerConfig("tensorboard", {"save_dir": "runs/tb", "name": "exp"}),
        LoggerConfig("mlflow", {"experiment_name": "exp", "save_dir": "runs/mlruns", "run_name": "r1"}),
        LoggerConfig("wandb", {"project": "exp", "name": "w1", "save_dir": "runs/wandb", "offline": True})])
    trainer.fit(model, datamodule=ImageDataModule(dataset_name="digits", image_size=16, batch_size=32))
    import wandb; wandb.finish()
    return trainer


def test_runs_magic_lists_every_backend(ip, run_dir):
    runs = ip.run_line_magic("autotimm", "runs runs")
    assert sorted(runs["backend"]) == ["csv", "mlflow", "tensorboard", "wandb"]
    assert set(runs["name"]) >= {"exp", "r1", "w1"}
    val = run_dir.callback_metrics["val/loss"].item()
    assert runs["val/loss"].tolist() == pytest.approx([val] * 4, rel=1e-5)


def test_cm_magic_shows_the_latest_matrix(ip, run_dir):
    fig = ip.run_line_magic("autotimm", "cm runs/csv")
    assert fig.axes[0].get_title().startswith("Confusion matrix, epoch 1")


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
