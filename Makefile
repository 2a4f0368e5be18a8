# The README's two commands are `make install` and `make test`; `make run` serves the API.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install test lint format run bench bench-large bench-profile clean

install: ## create .venv and install the project with its backends, test and dev tools
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[postgres,ldap,test,dev]'
	$(BIN)/python -m pip install --quiet -e examples/scim-backend-memory
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm (Node.js) not found: newman is not installed and Microsoft's Postman suite will be skipped" >&2; fi
	@echo "installed: $(BIN)/scim-service, $(BIN)/gunicorn, $(BIN)/pytest" >&2

test: ## the whole suite (unit, API, real-server integration), then the example plugin's own kit run
	$(BIN)/pytest -q
	$(BIN)/pytest -q examples/scim-backend-memory/tests

lint: ## format check and lint
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

run: ## serve the API on the embedded SQLite default (creates or migrates the schema first), with gunicorn.conf.py
	$(BIN)/scim-service db upgrade
	$(BIN)/gunicorn -c gunicorn.conf.py -b $(HOST):$(PORT) scim_service.wsgi:app

# BENCH=large adds a database of 1,000,000 users (and a group of 100,000) to the quick run.
LARGE := $(filter large,$(BENCH))

bench: ## benchmarks as ratios: backend growth, the SQLite write lock, the service over HTTP beside a bare row read
	$(BIN)/python tests/benchmarks/bench_sql.py $(if $(LARGE),--large 1000000)
	$(BIN)/python tests/benchmarks/bench_sqlite_lock.py
	$(BIN)/python tests/benchmarks/http_bench.py $(if $(LARGE),--large)

bench-large: ## the same with 1,000,000 users (several minutes)
	$(MAKE) bench BENCH=large

bench-profile: ## where the time goes: py-spy on the service's workers under load (OPS=get,page,patch,post)
	$(BIN)/python tests/benchmarks/http_bench.py --databases $(or $(DATABASES),sqlite) --profile $(or $(OPS),get,page,patch,post)

clean:
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache
