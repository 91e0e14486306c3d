# Two entry points (see README): `make demo` and `make test`. Both create .venv first.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: venv demo test bench clean
venv:
	@bash tools/venv.sh

demo: venv
	$(VENV)/bin/edge demo --save_path ./output

test: venv
	$(PY) -m pytest -q tests benchmarks $(PYTEST_ARGS)

bench: venv
	$(PY) -m pytest benchmarks -q --benchmark-enable --benchmark-columns=min,median,mean,max,rounds

clean:
	rm -rf $(VENV) output edge_models .pytest_cache .benchmarks
