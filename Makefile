# g2b-hub. `make demo` runs the whole hub on one machine; `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo serve worker test test-unit test-security fuzz lint typecheck bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "g2b-hub needs Python 3.11 or newer")'
	@test -x $(BIN)/python || { echo "==> creating the virtual environment $(VENV) ($(PYTHON) -m venv)"; $(PYTHON) -m venv $(VENV); }
	@echo "==> upgrading pip in $(VENV)"
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "==> installing g2b-hub and its development tools into $(VENV) (a minute or two the first time)"
	$(BIN)/python -m pip install --progress-bar on -e '.[dev]'
	@touch $(STAMP)
	@echo "==> installed: $(BIN)/g2bhub (next: make demo)"

install: $(STAMP)

demo: install            ## the whole hub on one machine at http://127.0.0.1:8000
	$(BIN)/g2bhub demo

serve: install
	$(BIN)/g2bhub serve

worker: install
	$(BIN)/g2bhub worker

test: install            ## every tier; PostgreSQL/RabbitMQ tiers need G2BHUB_TEST_DATABASE_URL / G2BHUB_TEST_AMQP_URL
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: install
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-security: install   ## the security tier: authorization matrix, attack cases, bounded fuzzing (a few minutes)
	$(BIN)/pytest tests/security $(PYTEST_ARGS)

FUZZ_EXAMPLES ?= 200
FUZZ_SEED ?= 9001
fuzz: install            ## the schemathesis run at length (FUZZ_EXAMPLES per operation and mode, FUZZ_SEED); ends with the case count
	G2BHUB_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) G2BHUB_FUZZ_SEED=$(FUZZ_SEED) $(BIN)/pytest tests/security/test_fuzz_openapi.py --timeout=0 $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy hub connectors mappings
	$(BIN)/lint-imports

# bench/kday.py's share of a full peak day (1.0 is the whole day: half an hour or more)
KDAY_SCALE ?= 0.1
bench: install           ## every benchmark in turn; each prints its figures (bus, chaos and kday need PostgreSQL + RabbitMQ)
	$(BIN)/python bench/bus.py
	$(BIN)/python bench/register.py
	$(BIN)/python bench/syndication.py
	$(BIN)/python bench/matching.py
	$(BIN)/python bench/chaos.py
	$(BIN)/python bench/hostile_webhook.py
	$(BIN)/python bench/kday.py --scale $(KDAY_SCALE)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
