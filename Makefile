# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint serve-deps train-deps dev-deps build-default clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

serve-deps: $(BIN)/python
	$(BIN)/pip install -q -e '.[serve]'

# Building the default model needs the training extras once (torch is pinned to
# the CPU build); serving itself needs only .[serve].
train-deps: $(BIN)/python
	$(BIN)/pip install -q -e '.[serve,train]'

dev-deps: $(BIN)/python
	$(BIN)/pip install -q -e '.[serve,train,dev]'

build-default: train-deps
	$(BIN)/triage build-default --if-missing

run: build-default
	$(BIN)/triage serve --host $(HOST) --port $(PORT)

lint: dev-deps
	$(BIN)/ruff check triage training serving tests bench datasets/tools
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
