# Two commands for a newcomer: `make demo` and `make test`. Both build .venv from requirements.lock.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
DEMO_CUSTOMERS ?= 5000
DEMO_DAYS ?= 730
DEMO_START ?= 2024-01-01
SCALE ?= S
export PYTHONDONTWRITEBYTECODE :=

.PHONY: venv demo test lint bench clean lock airflow dag-test

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode -r requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

demo: venv
	$(BIN)/crmwh demo --customers $(DEMO_CUSTOMERS) --days $(DEMO_DAYS) --start $(DEMO_START)

test: venv
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: venv
	$(BIN)/python -m warehouse.bench --scale $(SCALE)

lock:
	uv pip compile requirements.in --python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements.lock

clean:
	rm -rf $(VENV) data

# Airflow on SQLite, embedded: the project's DAGs, the demo data, one slot for the DuckDB writer.
AIRFLOW_ENV = AIRFLOW_HOME=$(CURDIR)/data/airflow \
	AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=False \
	CRMWH_HOME=$(CURDIR)/data \
	PATH=$(CURDIR)/$(BIN):$$PATH
DATE ?= $(shell $(BIN)/python -c "from datetime import date; from warehouse.config import load_settings; from warehouse.pipeline import delivery_days; print(delivery_days(load_settings().landing, date.max)[-1])" 2>/dev/null)
POOL_DESC = "DuckDB single writer: tasks that write the build warehouse"

airflow: venv
	$(AIRFLOW_ENV) $(BIN)/airflow db migrate
	$(AIRFLOW_ENV) $(BIN)/airflow pools set crmwh_warehouse 1 $(POOL_DESC)
	$(AIRFLOW_ENV) $(BIN)/airflow standalone

dag-test: venv
	test -d data/landing || $(MAKE) demo
	$(AIRFLOW_ENV) $(BIN)/airflow db migrate
	$(AIRFLOW_ENV) $(BIN)/airflow pools set crmwh_warehouse 1 $(POOL_DESC)
	$(AIRFLOW_ENV) $(BIN)/airflow dags test crm_daily $(DATE)
