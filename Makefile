# Cercle — the two commands: `make up` (run) and `make test` (run every test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := tests/interop/node_modules/.installed
SYSTEM_STAMP := $(VENV)/.system-deps
FONTS_STAMP := $(VENV)/.fonts
EMOJI_FONT := /usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf
NODE_DEPS := $(if $(wildcard tests/interop/package.json),$(NODE_STAMP))

.PHONY: up down status test lint typecheck bench clean-var audit lock

$(STAMP): pyproject.toml requirements.lock
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	@# quiet when it works (no setuptools "Editable installation" banner), the log when not
	$(BIN)/pip install -q -c requirements.lock -e '.[test]' > $(VENV)/pip-install.log 2>&1 || { cat $(VENV)/pip-install.log; exit 1; }
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
	@# nginx: the reverse proxy of the region profile (Synapse workers, `make up PROFILE=region`)
	@if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null) \
	      || echo "avertissement : installation de nginx impossible, le profil region ne démarrera pas"; \
	  else echo "avertissement : nginx absent (lancez en root pour l'installer)"; fi; \
	fi
	@# pg_dump / pg_restore / psql: backups of PostgreSQL profiles (cercle backup)
	@if ! command -v pg_dump >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-client >/dev/null) \
	      || echo "avertissement : installation de postgresql-client impossible"; \
	  else echo "avertissement : pg_dump absent (lancez en root pour l'installer)"; fi; \
	fi
	touch $@

# The PDF transcripts' monochrome emoji typeface (Debian « fonts-symbola », free for any
# use; bots/export/pdf.py): without it emoji print as « [emoji] ».
$(FONTS_STAMP): | $(STAMP)
	@if [ ! -f $(EMOJI_FONT) ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-symbola >/dev/null) \
	      || echo "avertissement : installation de fonts-symbola impossible, emoji imprimés « [emoji] » dans les PDF"; \
	  else echo "avertissement : fonts-symbola absent (apt-get install fonts-symbola) : emoji imprimés « [emoji] » dans les PDF"; fi; \
	fi
	touch $@

# matrix-js-sdk with its Rust crypto, for the interop tests with Element's stack.
$(NODE_STAMP): tests/interop/package.json
	cd tests/interop && if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; \
	  else npm install --no-audit --no-fund --loglevel=error; fi
	touch $@

# `make up` runs the embedded default (one Synapse process, SQLite); `make up PROFILE=region`
# the region profile (config/region.yaml: Synapse workers, PostgreSQL, Redis, nginx).
PROFILE ?=
PROFILE_ARG := $(if $(PROFILE),--profile $(PROFILE))

up: $(STAMP) $(FONTS_STAMP) $(if $(PROFILE),$(SYSTEM_STAMP))
	$(BIN)/cercle $(PROFILE_ARG) up

down: $(STAMP)
	$(BIN)/cercle $(PROFILE_ARG) down

status: $(STAMP)
	$(BIN)/cercle $(PROFILE_ARG) status

# Test files run in TEST_WORKERS processes side by side (pytest-xdist; a file's tests stay
# together in one process, so its fixtures start once): most tests wait on Synapse, the bot
# or a browser. 3 processes were faster still (7 min) but made timing races of other
# clients (Chromium, matrix-sdk-crypto) show more often on 2 cores. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: $(STAMP) $(SYSTEM_STAMP) $(FONTS_STAMP) $(NODE_DEPS)
	@$(MAKE) --no-print-directory audit
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --durations=25 $(PYTEST_ARGS)

# Known vulnerabilities of the locked set (pip-audit against PyPI's advisory service).
# --strict: a package that could not be audited fails the audit (never a false "clean").
# Where PyPI's JSON API is unreachable (an offline mirror), the audit is skipped LOUDLY.
audit: $(STAMP)
	@if $(BIN)/python -c "import urllib.request; urllib.request.urlopen('https://pypi.org/pypi/pip/24.0/json', timeout=20)" 2>/dev/null; then \
	  $(BIN)/pip-audit -r requirements.lock --no-deps --disable-pip --strict --progress-spinner off; \
	else echo "AVERTISSEMENT : audit des vulnérabilités NON FAIT — l'API JSON de PyPI par version (pypi.org/pypi/<paquet>/<version>/json), que pip-audit interroge, est injoignable d'ici."; fi

# The tested set, written after a dependency change (then commit requirements.lock).
lock: $(STAMP)
	@(echo "# The tested set (pip freeze of .venv with the test extras), used as pip constraints by"; \
	  echo "# 'make' and audited by 'make audit'. Regenerate with 'make lock' after a dependency change."; \
	  $(BIN)/pip freeze --exclude-editable | grep -v '^cercle==') > requirements.lock

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy homeserver bots dossier_service deployment cercle bridges backup bench

bench: $(STAMP)
	@for b in bench/*.py; do [ $$b = bench/compare_trees.py ] && continue; echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean-var:
	rm -rf var
