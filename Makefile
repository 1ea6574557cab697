# KSM Helpdesk: `make run` starts the demo, `make test` runs every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 5000
export HELPDESK_BASE_URL ?= http://$(HOST):$(PORT)

.PHONY: run test install migrate seed translations bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed translations

translations: $(VENV)/.installed
	@if ls translations/*/LC_MESSAGES/messages.po >/dev/null 2>&1; then \
		$(VENV)/bin/pybabel -q compile --use-fuzzy -d translations; fi

migrate: install
	$(FLASK) db upgrade

seed: migrate
	$(FLASK) seed-demo

# Web server and worker (outbox, SLA sweep, auto-close) together; Ctrl-C stops both.
run: seed
	@echo "KSM Helpdesk: http://$(HOST):$(PORT)"
	@trap 'kill 0' INT TERM EXIT; \
	$(FLASK) worker & \
	$(FLASK) run --host $(HOST) --port $(PORT)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install
	$(PY) bench/sla_sweep.py

clean:
	rm -rf $(VENV) instance
