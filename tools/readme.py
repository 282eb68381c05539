"""The README's source is `nbs/index.ipynb` (nbdev's `readme_nb`): its markdown cells, in order, are README.md.

    python tools/readme.py            # write README.md from nbs/index.ipynb
    python tools/readme.py --check    # exit 1 when README.md differs from what index.ipynb makes

Links and images in index.ipynb are written relative to `nbs/` (`docs/performance.ipynb`, `images/live_view.png`), so
they work in Jupyter and on the docs site; in README.md, at the repository root, they are made relative to the root
(`nbs/docs/performance.ipynb`). Code blocks are left as they are. Code cells of index.ipynb are examples that
`nbdev_test` runs; they do not go into the README.
"""
import json
import posixpath
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = "nbs"
_LINK = re.compile(r"(\]\()(?![a-zA-Z][a-zA-Z0-9+.-]*:|#|/)([^)\s]+)")  # ](target) with a relative target


def rebase(markdown:str, prefix:str=NBS) -> str:
    "`markdown` with every relative link and image target outside code blocks prefixed by `prefix/`."
    out, fenced = [], False
    for line in markdown.split("\n"):
        if line.lstrip().startswith("```"): fenced = not fenced
        out.append(line if fenced else _LINK.sub(lambda m: m[1] + posixpath.normpath(f"{prefix}/{m[2]}"), line))
    return "\n".join(out)


def render(nb_path=ROOT / NBS / "index.ipynb") -> str:
    "README.md's text: the markdown cells of the notebook, separated by blank lines, links made relative to the root."
    cells = json.loads(Path(nb_path).read_text())["cells"]
    text = "\n\n".join("".join(c["source"]).strip("\n") for c in cells if c["cell_type"] == "markdown") + "\n"
    return rebase(text)


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
