# Two commands: `make run` (install, then generate faces with the committed demo model) and `make test` (install, then the tests).
# TORCH picks the torch build installed before everything else: the CPU build by default. On Linux and Windows
# that is `+cpu` from PyTorch's CPU index (PyPI's plain torch pulls several GB of CUDA libraries); macOS
# wheels on PyPI are CPU builds already. Where PyTorch's index is unreachable, pip warns and takes a local
# or PyPI copy of the same `+cpu` wheel if it has one.
# A GPU machine: make run TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
PYTHON ?= python3
VENV ?= .venv
ifeq ($(shell uname -s),Darwin)
TORCH ?= torch==2.13.0
else
TORCH ?= torch==2.13.0+cpu --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple
endif
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install run test test-slow lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 11) <= v <= (3, 12) else \
		"t2i needs Python 3.11 or 3.12, and $(PYTHON) is %d.%d: run make PYTHON=python3.12 (or python3.11)" % v)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --retries 1 $(TORCH)
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

run: install
	$(BIN)/t2i generate "This man has gray hair and a goatee. He wears eyeglasses and a necktie." --n 4 --out outputs

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 -q

test-slow: install
	$(BIN)/python -m pytest -n 2 -q -m slow

clean:
	rm -rf $(VENV) data runs
