"""requirements-oldest.txt from settings.ini: each requirement's floor pinned exactly, for `make test-oldest`.

    python tools/floors.py          # write requirements-oldest.txt
    python tools/floors.py --check  # exit 1 when it is not what settings.ini says
"""
import re
import sys
from configparser import ConfigParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "requirements-oldest.txt"
KEYS = ["requirements", "tensorboard_requirements", "wandb_requirements", "mlflow_requirements", "comet_requirements"]
HEADER = """\
# What `make test-oldest` installs: every requirement in settings.ini at its floor (`>=X` becomes `==X`),
# and the test tools of dev_requirements as they are. Made by `python tools/floors.py` from settings.ini;
# tests/test_floors.py fails when the two differ.
"""


def requirements(key:str)->list:
    "The requirements under `key` in settings.ini, as written."
    cfg = ConfigParser(); cfg.read(ROOT / "settings.ini")
    return cfg["DEFAULT"].get(key, "").split()


def pin(req:str)->str:
    "`name==X` for `name>=X` (the floor), the requirement itself when it has no floor."
    floor = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9][0-9A-Za-z.]*)", req)
    return f"{floor[1]}=={floor[2]}" if floor else req


def render()->str:
    "The text of requirements-oldest.txt."
    pins = [pin(r) for k in KEYS for r in requirements(k)]
    return HEADER + "\n".join(pins) + "\n# test tools (dev_requirements)\n" + "\n".join(requirements("dev_requirements")) + "\n"


if __name__ == "__main__":
    if "--check" in sys.argv:
        if not OUT.exists() or OUT.read_text() != render():
            sys.exit("requirements-oldest.txt is not what settings.ini says: run python tools/floors.py and commit it")
        print("== requirements-oldest.txt matches settings.ini")
    else:
        OUT.write_text(render()); print(f"wrote {OUT.name}")
