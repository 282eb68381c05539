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


def test_every_public_name_resolves():
    "Each name of the lazy `__init__` imports (a typo there would only show when a user first asks for it)."
    import autotimm
    missing = [n for n in autotimm.__all__ if getattr(autotimm, n, None) is None]
    assert missing == []
    from autotimm import BackendError, BackendWarning, replay
    assert issubclass(BackendWarning, UserWarning) and issubclass(BackendError, RuntimeError) and callable(replay)


def test_backend_names_live_in_the_backends_module_only():
    "A backend is one plug-in: outside `backends.py` (and the demo's configs in `cli.py`) no library module names one."
    import re
    from pathlib import Path
    import autotimm
    from autotimm.backends import list_backends
    pattern = re.compile(r"[\"'](" + "|".join(list_backends()) + r")[\"']")
    hits = [f"{p.name}:{i}" for p in Path(autotimm.__file__).parent.glob("*.py") if p.name not in ("backends.py", "_modidx.py", "cli.py")
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []
