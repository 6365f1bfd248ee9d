# Cercle — the two commands: `make up` (run) and `make test` (run every test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := tests/interop/node_modules/.installed
SYSTEM_STAMP := $(VENV)/.system-deps
NODE_DEPS := $(if $(wildcard tests/interop/package.json),$(NODE_STAMP))

.PHONY: up down status test lint typecheck bench clean-var

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# What the tests need outside Python: headless Chromium for the browser tests, Dovecot
# (IMAP + LMTP) for the mail bridge's tests.
# Installed from the distribution's packages when missing (CI runs as root).
$(SYSTEM_STAMP): Makefile | $(STAMP)
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "avertissement : installation de chromium impossible, les tests navigateur seront ignorés"; \
	  else echo "avertissement : chromium absent (lancez en root pour l'installer)"; fi; \
	fi
	@if ! command -v dovecot >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd dovecot-lmtpd >/dev/null) \
	      || echo "avertissement : installation de dovecot impossible, les tests du pont courriel seront ignorés"; \
	  else echo "avertissement : dovecot absent (lancez en root pour l'installer)"; fi; \
	fi
	touch $@

# matrix-js-sdk with its Rust crypto, for the interop tests with Element's stack.
$(NODE_STAMP): tests/interop/package.json
	cd tests/interop && if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; \
	  else npm install --no-audit --no-fund --loglevel=error; fi
	touch $@

up: $(STAMP)
	$(BIN)/cercle up

down: $(STAMP)
	$(BIN)/cercle down

status: $(STAMP)
	$(BIN)/cercle status

test: $(STAMP) $(SYSTEM_STAMP) $(NODE_DEPS)
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy homeserver bots dossier_service deployment cercle bridges

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean-var:
	rm -rf var
