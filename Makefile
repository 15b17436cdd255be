# One entry point for people and CI. Everything installs into .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint clean

$(BIN)/tocsin: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test,lint]"
	touch $(BIN)/tocsin

install: $(BIN)/tocsin

demo: install
	$(BIN)/tocsin demo

test: install
	$(BIN)/python -m pytest -p no:cacheprovider

lint: install
	$(BIN)/ruff check streams detectors dashboards tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .tocsin-data
