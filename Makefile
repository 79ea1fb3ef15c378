# Two set-up commands for a fresh clone:  make demo  /  make test
# Both create .venv on first use (Python 3.11; see pyproject.toml for pins).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test venv bench addon clean help

help:
	@echo "make demo   - set up .venv if needed, reconstruct the bundled sample clip into out/"
	@echo "make test   - set up .venv if needed, run the whole test suite"
	@echo "make bench  - run the benchmarks (bench/), print ratios"
	@echo "make addon  - build the Blender extension zip into dist/"

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py --out out

test: $(STAMP)
	$(BIN)/python -m pytest -q -ra tests

bench: $(STAMP)
	$(BIN)/python -m bench

addon: $(STAMP)
	$(BIN)/python build.py

clean:
	rm -rf out dist build
