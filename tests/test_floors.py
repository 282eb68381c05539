"""The floors `make test-oldest` installs are the ones settings.ini states."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_requirements_oldest_is_what_settings_ini_says():
    r = subprocess.run([sys.executable, "tools/floors.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_every_backend_package_has_a_floor():
    sys.path.insert(0, str(ROOT / "tools"))
    try: import floors
    finally: sys.path.pop(0)
    pins = [floors.pin(r) for k in floors.KEYS for r in floors.requirements(k)]
    for name in ["torch", "torchvision", "timm", "pytorch-lightning", "torchmetrics", "tensorboard", "wandb", "mlflow", "comet_ml"]:
        assert any(p.startswith(name + "==") for p in pins), (name, pins)
