"""`import autotimm` stays light: no logging backend, no pyplot, no torch until a name needs them."""
import subprocess
import sys


def test_import_autotimm_imports_no_backend():
    code = ("import sys, autotimm; from autotimm import LoggerConfig, LoggingConfig, MetricConfig; "
            "LoggerConfig('wandb', {'project': 'p'}); "
            "print(sorted(m for m in ('wandb', 'mlflow', 'tensorboard', 'matplotlib.pyplot', 'torch', 'pytorch_lightning') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_form_layer_imports_no_lightning():
    "The logger form and LoggerManager's module (with the delivery layer) load without torch or Lightning."
    code = ("import sys, autotimm.form, autotimm.loggers, autotimm.delivery; "
            "print(sorted(m for m in ('wandb', 'mlflow', 'tensorboard', 'torch', 'pytorch_lightning') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
