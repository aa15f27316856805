# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is pinned here (setup.cfg says torch>=2.2): this build lies on the dev/CI machines' disk.
TORCH := torch==2.14.1 torchvision==0.29.1
DEMO_DIR ?= runs/demo
# pytest workers (pytest-xdist): the tests are independent; 2 halves the suite's time on the 2-core CI box
TEST_WORKERS ?= 2

.PHONY: install install-test demo test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip "setuptools>=64" wheel

$(VENV)/.torch: | $(BIN)/python
	$(BIN)/pip install -q $(TORCH)
	touch $@

$(VENV)/.installed: setup.cfg pyproject.toml $(VENV)/.torch
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: setup.cfg pyproject.toml $(VENV)/.torch
	$(BIN)/pip install -q -e ".[test]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/dgsamp train --protocol dgsamp --dataset PACSMini --algorithm ERM --test_envs 0 --epochs 3 \
		--resolution 96 --lr 1e-3 --output_dir $(DEMO_DIR) --no_resume --progress lines

test: install-test
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) tests

lint: install-test
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) runs build *.egg-info
