# Two commands do all set-up on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: serve test lint schema docs

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "SHMS needs Python 3.11+"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

serve: $(STAMP)  ## Serve the API on http://127.0.0.1:8000/graphql (embedded store, demo data)
	$(BIN)/shms serve

test: $(STAMP)  ## Run the whole test suite (starts a throwaway Redis if none answers)
	@scripts/ensure-test-redis
	$(BIN)/pytest

lint: $(STAMP)  ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

schema: $(STAMP)  ## Re-export schema.graphql after changing the schema
	$(BIN)/shms export-schema --output schema.graphql

docs: $(STAMP)  ## Re-render docs/access-policy.md from the policy table
	$(BIN)/python -c "from auth.matrix import render; open('docs/access-policy.md', 'w').write(render())"
