"""Code written against AutoTimm 0.7.37's logging API keeps matching our errors: same exception type, AutoTimm's words first."""
import pytest

from autotimm import LoggerConfig, LoggerManager

# (what, call, exception type, the start of AutoTimm's message: theja-vanka/AutoTimm src/autotimm/core/loggers.py)
CASES = [
    ("empty backend", lambda: LoggerConfig(backend=""), ValueError, "backend is required"),
    ("unknown backend", lambda: LoggerConfig(backend="Neptune", params={}), ValueError, "Unknown backend 'neptune'. Valid backends: "),
    ("empty configs", lambda: LoggerManager(configs=[]), ValueError, "At least one LoggerConfig is required"),
    ("missing required", lambda: LoggerConfig(backend="tensorboard", params={"name": "x"}), ValueError,
     "Missing required parameters for tensorboard logger: save_dir"),
    ("missing required (wandb)", lambda: LoggerConfig(backend="wandb", params={}), ValueError,
     "Missing required parameters for wandb logger: project"),
]


@pytest.mark.parametrize("make,exc,start", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_autotimm_messages_start_our_errors(workdir, make, exc, start):
    with pytest.raises(exc) as e:
        make()
    assert str(e.value).startswith(start), str(e.value)
    assert len(str(e.value)) > len(start) + 20  # followed by our advice
