# Two commands do all set-up on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# Browser assets (GraphiQL, the dashboard's graphql-ws): pinned by package-lock.json, served locally.
VENDOR := static/vendor
# The files the pages load, as paths inside node_modules; copied to the same paths under $(VENDOR).
VENDOR_FILES := react/umd/react.production.min.js react/LICENSE \
	react-dom/umd/react-dom.production.min.js react-dom/LICENSE \
	graphiql/graphiql.min.js graphiql/graphiql.min.css graphiql/LICENSE \
	@graphiql/plugin-explorer/dist/index.umd.js @graphiql/plugin-explorer/dist/style.css \
	graphql-ws/umd/graphql-ws.min.js graphql-ws/LICENSE.md
# Re-installed when the lockfile or this list changes, like the venv when pyproject.toml does.
ASSETS := $(VENDOR)/.installed-$(shell (cat package-lock.json; echo '$(VENDOR_FILES)') | cksum | cut -d' ' -f1)

.PHONY: serve test test-wire lint schema docs assets

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "SHMS needs Python 3.11+"'
	@test -x $(BIN)/python || { echo "creating the virtualenv $(VENV)/ ($(PYTHON) -m venv)"; \
		$(PYTHON) -m venv $(VENV); }
	@echo "installing SHMS and its Python dependencies into $(VENV)/ (pip, from pyproject.toml;"
	@echo "  a minute or two the first time, quiet unless something fails)"
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@
	@echo "$(VENV)/ is ready"

$(ASSETS): package-lock.json
	@if command -v npm >/dev/null; then \
		echo "installing browser assets (npm ci, package-lock.json) into $(VENDOR)/"; \
		npm ci --ignore-scripts --no-audit --no-fund --loglevel=error \
		&& rm -rf $(VENDOR) \
		&& for f in $(VENDOR_FILES); do \
			mkdir -p "$(VENDOR)/$$(dirname $$f)" && cp "node_modules/$$f" "$(VENDOR)/$$f" || exit 1; \
		done \
		&& touch $@; \
	else \
		echo "npm not found: GraphiQL will load its assets from a CDN and /dashboard will not work;"; \
		echo "install Node.js's npm (apt-get install npm), then run: make assets"; \
	fi

assets: $(ASSETS)  ## Install GraphiQL's and the dashboard's browser assets (npm ci) into static/vendor
	@test -f $(ASSETS) || { echo "make assets needs npm (apt-get install npm)"; exit 1; }

serve: $(STAMP) $(ASSETS)  ## Serve the API on http://127.0.0.1:8000/graphql (embedded store, demo data)
	@echo "starting SHMS: it seeds the demo facility first (a few seconds), then serves"
	@echo "  http://127.0.0.1:8000/graphql and /dashboard; Ctrl-C stops it"
	$(BIN)/shms serve

test: $(STAMP) $(ASSETS)  ## Run the whole test suite (starts a throwaway Redis if none answers)
	@scripts/ensure-test-redis
	$(BIN)/pytest

test-wire: $(STAMP)  ## Part of the suite through motor and the wire protocol (mongoeco; needs Python 3.13)
	@scripts/ensure-test-redis
	scripts/test-wire

lint: $(STAMP)  ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

schema: $(STAMP)  ## Re-export schema.graphql after changing the schema
	$(BIN)/shms export-schema --output schema.graphql

docs: $(STAMP)  ## Re-render docs/access-policy.md from the policy table
	$(BIN)/python -c "from auth.matrix import render; open('docs/access-policy.md', 'w').write(render())"
