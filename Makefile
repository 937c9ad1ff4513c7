# Two commands for a fresh machine: `make demo` (the main job) and `make test` (the whole test suite;
# `make test-fast` leaves out the slow, LibreOffice and Spark tests).
# Both create their own virtual environment in .venv and install what they need.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
OUT    ?= demo-out

.PHONY: demo test test-fast lint bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,spark]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/xl-kpi demo --out $(OUT)

test: $(VENV)/.installed
	$(PY) -m pytest

# The quick loop while coding (under a minute): everything except the tests marked slow, libreoffice or spark.
test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -m "not slow and not libreoffice and not spark"

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check xl_kpi udfs.py tests benchmarks scripts

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_engine.py
	$(PY) benchmarks/bench_cards.py
	$(PY) benchmarks/bench_summary.py
	$(PY) benchmarks/bench_batch.py
	$(PY) benchmarks/bench_sources.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .hypothesis
