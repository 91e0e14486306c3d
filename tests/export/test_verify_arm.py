"""ARM bundles on ARM kernels: the project's aarch64 runner (third_party/paddlelite-aarch64) under qemu.

The demo model's ARM bundles (FP32 and INT8, as `make demo` exports them) are run through the
runtime's own pre/post-processing with Paddle Lite's ARM kernels as the engine, and compared with
x86 Paddle Lite FP32; the INT8 mask AP is measured on the held-out split on ARM kernels. The two
edge networks with seeded weights are checked in tests/export/networks/test_export_end_to_end.py.
"""
import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import BackendError, ExportError
from edge.models import open_model_dir
from export import emulator
from export.exporter import ExportOptions, _verify_arm_wanted
from export.verify import compare
from export.verify_arm import arm_predictor

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "samples" / "synthetic").glob("*.jpg"))
REASON = emulator.unavailable_reason()
needs_emulator = pytest.mark.skipif(REASON is not None, reason=f"ARM EMULATOR MISSING, ARM CHECKS NOT RUN: {REASON}")


def feeds_of(bundle: Path, image_path: Path):
    from edge.preprocess import Preprocessor

    return Preprocessor(open_model_dir(bundle).spec)(cv2.imread(str(image_path)))


@needs_emulator
def test_fp32_arm_kernels_match_x86_lite(demo_fp32_arm_export):
    check = demo_fp32_arm_export.manifest["verification"]["fp32_arm_vs_x86_lite"]
    print("FP32 ARM vs x86 Lite:", {k: check[k] for k in ("matched", "reference_instances", "max_box_diff_px",
                                                          "max_score_diff", "min_mask_agreement")})
    assert check["reference_instances"] > 0 and check["engine"] == "lite-arm-qemu"
    assert check["matched"] == check["reference_instances"] == check["candidate_instances"]
    assert check["max_box_diff_px"] <= 1e-2 and check["min_mask_agreement"] >= 0.99


@needs_emulator
def test_int8_arm_kernels_lose_at_most_one_mask_ap_point_on_held_out_data(demo_int8_export):
    verification = demo_int8_export.manifest["verification"]
    check = verification["int8_arm_vs_fp32"]
    print("INT8 ARM vs FP32:", {k: check[k] for k in ("fp32_mask_ap", "int8_arm_mask_ap", "mask_ap_drop", "matched",
                                                      "reference_instances", "min_mask_agreement")})
    assert check["eval_data"].endswith("annotations.json") and check["threads"] == 1
    assert check["fp32_mask_ap"] >= 0.5
    assert check["mask_ap_drop"] <= 0.01, check
    assert "int8_program_vs_fp32" in verification   # recorded beside it, not replaced


@needs_emulator
def test_int8_with_one_thread_is_deterministic(demo_int8_export):
    bundle = demo_int8_export.path
    feeds = feeds_of(bundle, SAMPLES[0])
    first, second = (emulator.run_nb(bundle / "model.nb", feeds, threads=1) for _ in range(2))
    for a, b in zip(first, second):
        assert np.array_equal(a, b)


@needs_emulator
def test_int8_generic_and_dotprod_paths_agree(demo_int8_export):
    """Lite picks its INT8 GEMM by the CPU it reads (no dotprod on A53/A72, sdot on A76/A78-class cores)."""
    images = [cv2.imread(str(p)) for p in SAMPLES[:3]]
    results = {cpu: [arm_predictor(demo_int8_export.path, cpu=cpu)(image, 0.3) for image in images]
               for cpu in ("generic", "dotprod")}
    agreement = compare(results["generic"], results["dotprod"])
    print("INT8 generic vs dotprod:", agreement)
    assert agreement["reference_instances"] > 0 and agreement["recall"] == agreement["precision"] == 1.0
    assert agreement["max_box_diff_px"] <= 1.0 and agreement["min_mask_agreement"] >= 0.97


@needs_emulator
def test_runner_version_equals_the_nb_header_written_by_x86_opt(demo_fp32_arm_export, tmp_path):
    nb = demo_fp32_arm_export.path / "model.nb"
    header = nb.read_bytes()[2:18].split(b"\0")[0].decode()   # uint16 meta version, then char[16] opt version
    inputs = []
    for i, (name, array) in enumerate(feeds_of(demo_fp32_arm_export.path, SAMPLES[0]).items()):
        np.save(tmp_path / f"{i}.npy", array)
        inputs.append(f"{name}={tmp_path / f'{i}.npy'}")
    out = subprocess.run([emulator.qemu_path(), str(emulator.runner_path()), str(nb), str(tmp_path), *inputs],
                         capture_output=True, text=True)
    assert header == "v2.13-rc"
    assert json.loads(out.stdout.splitlines()[-1])["version"] == header, out.stderr[-500:]


@needs_emulator
def test_a_truncated_bundle_is_a_clear_error(demo_fp32_arm_export, tmp_path):
    broken = tmp_path / "model.nb"
    broken.write_bytes((demo_fp32_arm_export.path / "model.nb").read_bytes()[:4000])
    with pytest.raises(BackendError, match="could not run"):
        emulator.run_nb(broken, feeds_of(demo_fp32_arm_export.path, SAMPLES[0]), timeout=120)


def test_without_the_runner_verification_is_skipped_loudly_or_refused(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv(emulator.RUNNER_ENV, str(tmp_path / "absent"))
    assert "runner" in emulator.unavailable_reason()
    assert _verify_arm_wanted(ExportOptions(target="arm")) is False
    assert "ARM verification skipped" in caplog.text
    with pytest.raises(ExportError, match="--verify-arm"):
        _verify_arm_wanted(ExportOptions(target="arm", verify_arm=True))
    assert _verify_arm_wanted(ExportOptions(target="x86", verify_arm=True)) is False


EMULATED_PYTHON = Path(__file__).resolve().parents[2] / ".cache" / "arm" / "python3.11"
needs_emulated_python = pytest.mark.skipif(
    not EMULATED_PYTHON.exists(),
    reason=f"EMULATED AARCH64 PYTHON MISSING, NOT RUN: {EMULATED_PYTHON} (made by tools/arm/setup_emulator.sh)")


def emulated(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([str(EMULATED_PYTHON), *args], capture_output=True, text=True, timeout=timeout)


@needs_emulated_python
def test_the_wheel_runs_in_aarch64_python_with_threads_and_power_mode():
    code = ("import paddlelite.lite as lite, importlib.metadata as m; c = lite.MobileConfig(); c.set_threads(2); "
            "c.set_power_mode(lite.PowerMode.LITE_POWER_HIGH); "
            "print(lite.version(), c.threads(), c.power_mode(), m.version('paddlelite'))")
    out = emulated("-c", code, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    version, threads, power_mode, dist = out.stdout.split()
    assert (version, threads, dist.split("+")[0]) == ("v2.13-rc", "2", "2.13rc0")
    assert "HIGH" in power_mode


@needs_emulated_python
def test_edge_predict_in_aarch64_python_equals_the_x86_run(demo_fp32_arm_export, demo_x86_export, tmp_path):
    """The whole runtime (CLI, pre/post-processing, result files) on an aarch64 CPython, ARM kernels."""
    from edge.cli import main

    image = SAMPLES[0]
    arm_out, x86_out = tmp_path / "arm", tmp_path / "x86"
    run = emulated("-c", "import sys; from edge.cli import main; sys.exit(main(sys.argv[1:]))", "predict",
                   "--model", str(demo_fp32_arm_export.path), "--input", str(image), "--save_path", str(arm_out))
    assert run.returncode == 0, run.stderr[-2000:]
    assert main(["predict", "--model", str(demo_x86_export.path), "--input", str(image), "--save_path", str(x86_out)]) == 0
    arm, x86 = (json.loads(next(out.glob("*.json")).read_text()) for out in (arm_out, x86_out))
    arm, x86 = (r.get("res", r) for r in (arm, x86))
    assert len(arm["boxes"]) == len(x86["boxes"]) > 0
    for a, b in zip(sorted(arm["boxes"], key=lambda b: -b["score"]), sorted(x86["boxes"], key=lambda b: -b["score"])):
        assert a["cls_id"] == b["cls_id"] and abs(a["score"] - b["score"]) <= 1e-4
        assert np.max(np.abs(np.subtract(a["coordinate"], b["coordinate"]))) <= 1e-2
