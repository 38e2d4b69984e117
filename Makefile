# Two commands on a fresh machine with Python 3.11+ and pip: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint pytest format vectors mutation clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/coopnet demo

test: lint pytest

pytest: $(STAMP)
	$(BIN)/python -m pytest

# mypy cannot follow setuptools' editable finder, so it reads the package through a
# symlink named `coopnet` that points at this folder (see pyproject's [tool.mypy]).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	mkdir -p .typecheck && ln -sfn .. .typecheck/coopnet
	$(BIN)/mypy -p coopnet
	$(BIN)/lint-imports
	$(BIN)/python scripts/check_import_cycles.py
	$(BIN)/python scripts/make_vectors.py --check

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

vectors: $(STAMP)
	$(BIN)/python scripts/make_vectors.py

# Mutation testing of protocol/ (TESTING.md): mutmut inside functions, scripts/mutation's own
# mutator outside them; writes mutation-report/. Slow, so not part of `make test`.
# Options: make mutation MUTATION_ARGS='--only protocol/ledger.py --jobs 1'
mutation: $(STAMP)
	$(BIN)/python -m pip show --quiet mutmut >/dev/null 2>&1 || \
		$(BIN)/python -m pip install --quiet -e '.[dev,mutation]'
	$(BIN)/python -m scripts.mutation $(MUTATION_ARGS)

clean:
	rm -rf $(VENV) .typecheck .mypy_cache .pytest_cache .ruff_cache build *.egg-info mutation-report
