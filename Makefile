# Two set-up commands for a fresh clone:  make demo  /  make test
# Both create .venv on first use (Python 3.11; see pyproject.toml for pins).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test venv bench addon clean help bpy-venvs

# Extra Blender versions the add-on tests also run under (tests/blender/test_blender_versions.py).
# Each is ~35 s to install and ~1 GB; `make test BPY_VENVS=` skips them.
BPY_VENVS ?= .venv-bpy45/.installed .venv-bpy42/.installed

help:
	@echo "make demo   - set up .venv if needed, reconstruct the bundled sample clip into out/"
	@echo "make test   - set up .venv if needed, run the whole test suite"
	@echo "make bench  - run the benchmarks (bench/), print ratios"
	@echo "make addon  - build the Blender extension zip into dist/"
	@echo "make bpy-venvs - create .venv-bpy45 / .venv-bpy42 (bpy 4.5 / 4.2) for the add-on tests"

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py --out out

test: $(STAMP) $(BPY_VENVS)
	$(BIN)/python -m pytest -q -ra tests

bench: $(STAMP)
	$(BIN)/python -m bench

addon: $(STAMP)
	$(BIN)/python build.py

bpy-venvs: $(BPY_VENVS)

.venv-bpy45/.installed:
	@test -x .venv-bpy45/bin/python || $(PYTHON) -m venv .venv-bpy45
	.venv-bpy45/bin/python -m pip install --disable-pip-version-check -q 'bpy==4.5.*' 'numpy<2' pytest
	@touch $@

.venv-bpy42/.installed:
	@test -x .venv-bpy42/bin/python || $(PYTHON) -m venv .venv-bpy42
	.venv-bpy42/bin/python -m pip install --disable-pip-version-check -q 'bpy==4.2.*' 'numpy<2' pytest
	@touch $@

clean:
	rm -rf out dist build
