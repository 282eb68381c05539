# The README's two commands: `make demo` and `make test`. Each installs what it needs into .venv.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
QUIET := grep -v '^WARNING: Location' || true

.PHONY: install demo test check-sync readme

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
	$(VENV)/bin/pytest tests
