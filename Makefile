# Two commands: `make run` (install, then generate faces with the committed demo model) and `make test` (install, then the tests).
# TORCH picks the torch build installed before everything else: the CPU build by default.
# A GPU machine: make run TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install run test test-slow lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

run: install
	$(BIN)/t2i generate "The person has high cheekbones, and pointy nose. She is wearing lipstick." --n 4 --out outputs

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 -q

test-slow: install
	$(BIN)/python -m pytest -n 2 -q -m slow

clean:
	rm -rf $(VENV) data runs
