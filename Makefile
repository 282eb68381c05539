# The README's two commands: `make demo` and `make test`. Each installs what it needs into .venv.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
QUIET := grep -v '^WARNING: Location' || true

.PHONY: install demo test check-sync readme install-oldest test-oldest

install:
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "== installing into $(VENV) (torch, timm, lightning, the four backends, nbdev, pytest)"
	@$(PIP) install -q torch==2.14.1 torchvision==0.29.1 2>&1 | $(QUIET)
	@$(PIP) install -q -e '.[all,dev]' 2>&1 | $(QUIET)

demo: install
	$(VENV)/bin/autotimm demo

# notebooks are the source: the package must be what nbdev_export makes of them, and they must be clean
check-sync:
	@before=$$(git status --porcelain -- autotimm nbs | sort); \
	$(VENV)/bin/nbdev_clean >/dev/null; $(VENV)/bin/nbdev_export; \
	after=$$(git status --porcelain -- autotimm nbs | sort); \
	if [ "$$before" != "$$after" ]; then echo "nbdev_export/nbdev_clean changed files: run them and commit:"; \
	  comm -13 <(echo "$$before") <(echo "$$after"); exit 1; fi; echo "== notebooks clean, package in sync"
	@$(PY) tools/readme.py --check  # README.md is made from nbs/index.ipynb (its source): python tools/readme.py

readme:  # write README.md from nbs/index.ipynb
	$(PY) tools/readme.py

test: install check-sync
	@echo "== notebooks (nbdev_test, slow cells included)"
	cd nbs && ../$(VENV)/bin/nbdev_test --flags slow --n_workers 2
	@echo "== pytest"
	$(VENV)/bin/pytest tests -n 2 --dist worksteal  # two workers: most tests wait on servers, subprocesses, disks

# the other end of the range: every requirement at the floor settings.ini states (requirements-oldest.txt), in its own venv
OLDEST ?= .venv-oldest
OLDEST_TESTS := tests/test_floors.py tests/test_adapters.py tests/test_seed_snippets.py tests/test_backends.py tests/test_end_to_end.py tests/test_media.py \
	tests/test_widgets.py tests/test_magics.py tests/test_notebook_kernel.py tests/test_ckpt_safe_load.py tests/test_resume.py \
	tests/test_pretrained_cache.py
# left to `make test`, to keep this within CI's time: the live view's and matrix viewer's fits in test_widgets
# (the kernel test trains with the live view on), test_media's outage and replay (autotimm's own machinery),
# and test_end_to_end's extra fit that looks for Lightning deprecation warnings
OLDEST_SKIP := not (table_rows or best_epoch or interrupted_view or text_and_pictures or live_view_keeps or counts_are_stored \
	or viewer_slider or prefill or spool_while or internal_deprecation)

install-oldest:
	@test -x $(OLDEST)/bin/python || python3 -m venv $(OLDEST)
	@echo "== installing the floors into $(OLDEST) (requirements-oldest.txt; torch's floor comes from PyPI, about 4 GB)"
	@$(OLDEST)/bin/python -m pip --disable-pip-version-check install -q uv 2>&1 | $(QUIET)
	@$(OLDEST)/bin/uv pip install -q --python $(OLDEST)/bin/python -r requirements-oldest.txt
	@$(OLDEST)/bin/uv pip install -q --python $(OLDEST)/bin/python --no-deps -e .

test-oldest: install-oldest
	@python3 tools/floors.py --check
	@echo "== notebook layer at the floors (nbdev_test)"
	cd nbs && ../$(OLDEST)/bin/nbdev_test --path 12_form.ipynb && ../$(OLDEST)/bin/nbdev_test --path 14_magics.ipynb
	@echo "== seed examples, every backend end to end, the notebook layer at the floors"
	$(OLDEST)/bin/pytest $(OLDEST_TESTS) -k "$(OLDEST_SKIP)" -n 2 --dist worksteal
