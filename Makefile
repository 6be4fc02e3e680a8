# The two commands a new user runs: `make app` and `make test`. Each installs what it needs into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch + torchvision as one pinned pair (open_clip needs torchvision); override for another machine.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
CHROMIUM ?= /usr/bin/chromium
# `make app MODEL=chs20/FuseLIP-B-CC3M-MM` (or a folder) adds a released model; DOWNLOAD=1 lets it be fetched.
MODEL ?= $(FUSELIP_MODEL)
DOWNLOAD ?= $(or $(FUSELIP_DOWNLOAD),0)
export GRADIO_ANALYTICS_ENABLED := False
export PYTHONHASHSEED := 0

.PHONY: install test test-unit test-notebooks app notebooks preview bench browser clean help

help:
	@echo "make app        start the Gradio demo on http://127.0.0.1:7860"
	@echo "make test       install, then type-check fuselip/ (mypy), run unit tests, notebooks (nbval) and browser tests"
	@echo "make notebooks  start JupyterLab on the tutorials"
	@echo "make preview    draw a contact sheet of every task (docs/)"
	@echo "make bench      run every benchmark in benchmarks/"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e '.[app,notebooks,dev,hub]'
	touch $(STAMP)

install: $(STAMP)

# Debian's Chromium for the browser tests (never a downloaded browser build).
browser:
	@test -x $(CHROMIUM) || { echo "installing Debian chromium"; \
	  (apt-get update -q && apt-get install -y -q chromium) >/dev/null || \
	  echo "could not install chromium (not root?): browser tests will be skipped"; }

test: install browser
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider tests notebooks --nbval --nbval-current-env

test-unit: install
	$(BIN)/python -m pytest -q tests

test-notebooks: install
	$(BIN)/python -m pytest -q --nbval --nbval-current-env notebooks

app: install
	FUSELIP_MODEL="$(MODEL)" FUSELIP_DOWNLOAD="$(DOWNLOAD)" $(BIN)/python -m app

notebooks: install
	$(BIN)/jupyter lab --ip 127.0.0.1 --no-browser notebooks

preview: install
	$(BIN)/python -m fuselip.data preview-all --out docs/tasks

bench: install
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache build *.egg-info
