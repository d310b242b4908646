# Two commands for a fresh machine with Python 3.11: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run serve test test-postgres test-browser lint format bench clean

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "make: $(PYTHON) not found; install Python 3.11 (or run: make PYTHON=python3 ...)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) requirements.txt requirements-dev.txt
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# First run: write what was chosen to .env (git-ignored) so `manage.py pam ...` in this
# checkout opens the same vault with the same key. umask 077: the file is 0600, as it holds the
# signing key and will hold the demo login's password. No DEBUG: `make run` shows the product
# as production does (runlocal sets what plain HTTP on 127.0.0.1 needs).
.env:
	@umask 077 && printf '# written by make on first run; edit freely\nSECRET_KEY=%s\nVAULT_KEY_FILE=%s/.vault-key\n' "$$(od -An -N48 -tx1 /dev/urandom | tr -d ' \n')" "$(CURDIR)" > .env
	@echo "make: wrote .env (a generated SECRET_KEY, encryption key file $(CURDIR)/.vault-key)"

## The product on this machine: local AWS emulator, demo data, a gateway, the web app.
run: $(STAMP) .env
	$(PY) manage.py runlocal --demo

## The web app and the default gateway, without emulator or demo data (real AWS).
serve: $(STAMP) .env
	$(PY) manage.py runlocal

## The whole suite (browser tests run when a Chromium is found).
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check --quiet .
	$(PY) -m pytest -n 2 -q

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
