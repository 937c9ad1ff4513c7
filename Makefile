# Two commands for a fresh machine: `make demo` (the main job) and `make test` (the test suite).
# Both create their own virtual environment in .venv and install what they need.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
OUT    ?= demo-out

.PHONY: demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/xl-kpi demo --out $(OUT)

test: $(VENV)/.installed
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check xl_kpi udfs.py tests benchmarks scripts

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_engine.py
	$(PY) benchmarks/bench_cards.py
	$(PY) benchmarks/bench_summary.py
	$(PY) benchmarks/bench_batch.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .hypothesis
