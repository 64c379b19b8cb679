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
	$(BIN)/ruff check triage training serving tests bench datasets/tools scripts
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# Air-gapped installation (docs/airgap.md). `make airgap [BUNDLE=dir]` builds dist/triage-offline-VERSION.tar.gz
# on a connected machine; `make airgap-install ARCHIVE=... PREFIX=...` installs it with no network.
.PHONY: airgap airgap-install
airgap: serve-deps
	$(BIN)/python scripts/airgap.py build $(if $(BUNDLE),--bundle $(BUNDLE))

airgap-install:
	@test -n "$(ARCHIVE)" -a -n "$(PREFIX)" || { echo "usage: make airgap-install ARCHIVE=file.tar.gz PREFIX=dir"; exit 2; }
	$(PYTHON) scripts/airgap.py install $(ARCHIVE) --prefix $(PREFIX)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
