# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run paper test bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/tickguard serve

paper: $(STAMP)
	$(VENV)/bin/tickguard paper

# The browser tests drive Debian's Chromium (never `playwright install`): installed only when missing.
CHROMIUM := /usr/bin/chromium

test: $(STAMP) $(CHROMIUM)
	./scripts/ensure-postgres
	./scripts/ensure-nats
	$(PY) -m pytest

$(CHROMIUM):
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium

bench: $(STAMP)
	$(PY) -m bench

# The full fault run (~10-20 min, not part of `make test`): SIGKILLs, feed faults, hostile input at volume,
# schemathesis against /openapi.json.
.PHONY: faults
faults: $(STAMP)
	$(PY) -m tests.faults.full

clean:
	rm -rf $(VENV) build *.egg-info .tickguard
