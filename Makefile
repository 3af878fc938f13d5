# The two commands of the README: `make serve` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= $(abspath ../shared/data)

$(BIN)/hwscore: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

.PHONY: install serve test lint
install: $(BIN)/hwscore

serve: install
	HWSCORE_DATA_DIR=$${HWSCORE_DATA_DIR:-$(DATA_DIR)} $(BIN)/hwscore serve

test: install
	bash scripts/ensure-services.sh
	HWSCORE_DATA_DIR=$${HWSCORE_DATA_DIR:-$(DATA_DIR)} $(BIN)/pytest -q

lint: install
	$(BIN)/ruff check hwmodels app workers tests bench
	$(BIN)/mypy
