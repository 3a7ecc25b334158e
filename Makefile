PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: install run worker test lint format bench

$(BIN)/.installed: requirements.txt requirements-dev.txt bench/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed

# Collecting (hashing and compressing every file) takes most of a minute: only when a static
# file or the installed packages changed since the last collect.
STATIC_MANIFEST := staticfiles/staticfiles.json
STATIC_SOURCES := $(shell find . -path ./.venv -prune -o -path '*/static/*' -type f -print)

$(STATIC_MANIFEST): $(BIN)/.installed $(STATIC_SOURCES)
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	touch $@

run: install $(STATIC_MANIFEST)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo --if-empty
	$(BIN)/python -m config.server -b 127.0.0.1 -p $(PORT) --ping-interval 25 --ping-timeout 60 config.asgi:application

# With UPSTASH_REDIS_URL set, tasks go to Redis: run this next to `make run` (beat included).
worker: install
	$(BIN)/celery -A config worker -B --queues default,mail,tools --concurrency 2 --loglevel INFO

# pytest exits 5 when it selected no test: say so, and fail.
test: install
	@$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest selected no tests" >&2; fi; exit $$rc

# Fresh PostgreSQL database, seeded at scale, WEB_CONCURRENCY=--web-concurrency (1), Locust per scenario (bench/run.py).
bench: install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
