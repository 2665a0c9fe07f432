# Two commands do it all on a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
# Two workers (the machine has two cores) for all but the browser tests, which run after them in
# one process: Chromium's timing under two busy workers made a few of them flaky (exit code 5,
# "no tests selected", is not a failure: PYTEST_ARGS may pick tests of one kind only).
XDIST ?= -n 2

.PHONY: demo install migrate seed serve test lint format bench messages clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

migrate: install
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo

serve: install
	$(PY) manage.py serve --host $(HOST) --port $(PORT) --simulate

## demo: venv, install, migrate, seed, and serve on http://127.0.0.1:8000
demo: seed serve

## test: the whole suite (PostgreSQL/Redis from DATABASE_URL/REDIS_URL, or 127.0.0.1 when they answer)
test: install
	$(PY) -m pytest $(XDIST) -m "not browser" $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(PY) -m pytest -m browser $(PYTEST_ARGS) || [ $$? -eq 5 ]

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## bench: every benchmark in quick mode (the real stack: PostgreSQL and Redis on 127.0.0.1; each makes its own database)
bench: install
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	@for b in bench/[!_]*.py; do echo "== $$b"; $(PY) $$b --quick || exit 1; done

## messages: re-extract every string of the project into the one catalogue (locale/) and compile it
MESSAGES_IGNORE := --ignore=.venv --ignore=var --ignore=tests --ignore=bench --ignore=test-artifacts --ignore=node_modules --ignore=static/vendor
messages: install
	$(PY) manage.py makemessages -l ko -l en $(MESSAGES_IGNORE)
	$(PY) manage.py compilemessages $(MESSAGES_IGNORE)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
