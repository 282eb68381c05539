"""`import autotimm` stays light: no logging backend, no pyplot, no torch until a name needs them."""
import subprocess
import sys


def test_import_autotimm_imports_no_backend():
    code = ("import sys, autotimm; from autotimm import LoggerConfig, LoggingConfig, MetricConfig; "
            "LoggerConfig('wandb', {'project': 'p'}); "
            "print(sorted(m for m in ('wandb', 'mlflow', 'tensorboard', 'matplotlib.pyplot', 'torch', 'pytorch_lightning') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
