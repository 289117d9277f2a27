# agentdigest: `make demo` and `make test` do all the set-up themselves on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
EXTRAS ?= test,postgres,spark

.PHONY: demo test bench bench-full install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	@touch $@

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/agentdigest demo --dir demo

test: $(STAMP)
	$(PY) -m pytest -q

# Compute benchmark (10M events by default; EVENTS=1000000 for a quick look) and render timing.
# bench-full adds a 100M-event DuckDB dataset (about 10 GB of disk under bench/data/).
EVENTS ?= 10000000
bench: $(STAMP)
	$(PY) bench/compute.py --events $(EVENTS)
	$(PY) bench/render.py

bench-full: $(STAMP)
	$(PY) bench/compute.py --events $(EVENTS) --full

clean:
	rm -rf $(VENV) demo bench/results bench/data .pytest_cache
