# The two quick-start commands (see README.md):
#   make up     install everything and run the embedded system
#   make test   install everything and run the whole test suite
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: up test lint

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

up: $(VENV)/.installed
	$(PY) manage.py run_embedded

test: $(VENV)/.installed
	bash tests/run.sh

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
