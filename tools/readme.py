"""The README's source is `nbs/index.ipynb` (nbdev's `readme_nb`): its markdown cells, in order, are README.md.

    python tools/readme.py            # write README.md from nbs/index.ipynb
    python tools/readme.py --check    # exit 1 when README.md differs from what index.ipynb makes

`nbdev_readme` (which needs Quarto) renders the same notebook to the same text, so neither can overwrite the other
with something else. Code cells of index.ipynb are examples that `nbdev_test` runs; they do not go into the README.
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def render(nb_path=ROOT / "nbs" / "index.ipynb") -> str:
    "README.md's text: the markdown cells of the notebook, separated by blank lines."
    cells = json.loads(Path(nb_path).read_text())["cells"]
    return "\n\n".join("".join(c["source"]).strip("\n") for c in cells if c["cell_type"] == "markdown") + "\n"


def main(argv):
    text, readme = render(), ROOT / "README.md"
    if "--check" in argv:
        if readme.read_text() != text:
            print("README.md differs from nbs/index.ipynb (its source): edit the notebook, then run python tools/readme.py")
            return 1
        return 0
    readme.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
