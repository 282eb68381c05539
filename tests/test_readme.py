"""README.md is a landing page made from nbs/index.ipynb: in step with it, short, and every link in it leads somewhere."""
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from readme import rebase, render  # noqa: E402

README = (ROOT / "README.md").read_text()


def test_readme_is_what_index_makes():
    assert README == render()
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "readme.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


def test_readme_is_a_landing_page():
    assert len(README.encode()) < 15_000
    for section in ("## Install", "## Quick start", "## What gets logged", "## Why trust it", "## What it costs", "## Read more"):
        assert section in README
    assert "`make demo`" in README and "`make test`" in README


def test_every_relative_link_in_the_readme_exists():
    targets = [t.split("#")[0] for t in re.findall(r"\]\((?![a-z]+:|#)([^)\s]+)\)", README)]
    assert "nbs/docs/performance.ipynb" in targets and "nbs/docs/reliability.ipynb" in targets
    assert [t for t in targets if not (ROOT / t).exists()] == []


def test_links_are_rebased_outside_code_blocks_only():
    md = "[a](docs/x.ipynb#y) ![i](images/a.png) [b](https://x.org) [c](#top)\n```python\nf([a](b))\n```\n[d](../up.md)"
    assert rebase(md) == ("[a](nbs/docs/x.ipynb#y) ![i](nbs/images/a.png) [b](https://x.org) [c](#top)\n```python\nf([a](b))\n```\n"
                          "[d](up.md)")


def test_every_relative_link_in_the_guides_exists():
    missing = []
    for nb in sorted((ROOT / "nbs").glob("docs/*.ipynb")) + [ROOT / "nbs" / "index.ipynb"]:
        md = "\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "markdown")
        for t in re.findall(r"\]\((?![a-z]+:|#)([^)\s]+)\)", md):
            if not (nb.parent / t.split("#")[0]).exists(): missing.append(f"{nb.name}: {t}")
    assert missing == []
