"""The Android demo's plain-Java core (android_demo/core): compiled with the JDK and its JUnit tests
run against the golden vectors (tests/golden) that tests/tools/test_golden.py checks the Python
runtime against. JDK and JUnit come from Debian (tools/test_tools.sh installs them for `make test`).
"""
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "android_demo" / "core"
JUNIT_JARS = (Path("/usr/share/java/junit4.jar"), Path("/usr/share/java/hamcrest-core.jar"))


def sources(kind: str):
    return sorted(str(p) for p in (CORE / "src" / kind / "java").rglob("*.java"))


def javac(out: Path, files, classpath=()):
    # --release 8: the Android app (minSdk 24) compiles the same sources
    cmd = ["javac", "--release", "8", "-Xlint:all", "-Xlint:-options", "-Werror", "-d", str(out)]
    if classpath:
        cmd += ["-cp", ":".join(str(p) for p in classpath)]
    proc = subprocess.run(cmd + list(files), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    for jar in JUNIT_JARS:
        assert jar.is_file(), f"{jar} is missing: run `bash tools/test_tools.sh` (apt-get install junit4)"
    main, test = tmp_path_factory.mktemp("core_main"), tmp_path_factory.mktemp("core_test")
    javac(main, sources("main"))
    javac(test, sources("test"), [main, *JUNIT_JARS])
    return main, test


def test_core_has_no_android_or_third_party_imports():
    imports = set()
    for path in sources("main"):
        imports |= set(re.findall(r"^import\s+(?:static\s+)?([\w.]+)", Path(path).read_text(), re.M))
    assert imports and all(name.startswith(("java.", "paddlexedge.")) for name in imports), sorted(imports)


def test_junit_suite_passes_against_the_golden_vectors(compiled):
    main, test = compiled
    classes = sorted(p.relative_to(test).with_suffix("").as_posix().replace("/", ".")
                     for p in test.rglob("*Test.class") if "$" not in p.name)
    assert "paddlexedge.core.GoldenParityTest" in classes
    classpath = ":".join(str(p) for p in (main, test, *JUNIT_JARS))
    proc = subprocess.run(["java", "-cp", classpath, f"-Dgolden.dir={REPO / 'tests' / 'golden'}",
                           "org.junit.runner.JUnitCore", *classes], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    ran = re.search(r"^OK \((\d+) tests\)", proc.stdout, re.M)
    assert ran and int(ran.group(1)) >= 20, proc.stdout[-2000:]
    parity = re.search(r"GOLDEN PARITY: .*", proc.stdout)
    assert parity and "(100.0000 %)" in parity.group(0), proc.stdout
    print(parity.group(0))


def test_a_broken_core_fails_the_suite(compiled, tmp_path):
    """The suite can fail: the same tests against a core whose cubic resize rounds half up instead of to even."""
    main, test = compiled
    source = (CORE / "src/main/java/paddlexedge/core/OpenCvResize.java").read_text()
    broken = source.replace("int r = (int) Math.rint(t);", "int r = (int) Math.floor(t + 0.5f);")
    assert broken != source
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "OpenCvResize.java").write_text(broken)
    patched = tmp_path / "classes"
    javac(patched, [str(tmp_path / "src" / "OpenCvResize.java")], [main])
    classpath = ":".join(str(p) for p in (patched, main, test, *JUNIT_JARS))
    proc = subprocess.run(["java", "-cp", classpath, f"-Dgolden.dir={REPO / 'tests' / 'golden'}", "org.junit.runner.JUnitCore",
                           "paddlexedge.core.OpenCvResizeTest", "paddlexedge.core.GoldenParityTest"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and "FAILURES!!!" in proc.stdout, proc.stdout[-3000:]
