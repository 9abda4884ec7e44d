# The two commands: `make demo` and `make test`. Everything else is for developers.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: demo test bench lint format install system-packages messages clean-demo

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

# Debian packages the platform needs at run time (fonts and PDF libraries later); installed
# only when missing, so the two commands stay the only set-up.
system-packages:
	@bash scripts/system-packages.sh runtime

demo: install system-packages
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	PORT=$(PORT) $(PY) manage.py run_demo --port $(PORT)

test: install
	@bash scripts/system-packages.sh test
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

bench: install
	@bash scripts/system-packages.sh bench
	$(PY) -m bench.run_all

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

messages: install
	$(PY) manage.py makemessages -l zh_Hans --no-obsolete --no-location -i '.venv/*' -i 'bench/*'
	$(PY) manage.py compilemessages -l zh_Hans --ignore '.venv/*'

clean-demo:
	rm -f var/bars.sqlite3 var/bars.sqlite3-wal var/bars.sqlite3-shm
