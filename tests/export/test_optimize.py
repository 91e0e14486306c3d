"""optimize(): paddle_lite_opt in a child process; failures become ExportError naming the op."""
from __future__ import annotations

from pathlib import Path

import export  # noqa: F401  (before paddle)
import numpy as np
import pytest

import programs
from edge.errors import ExportError
from export.compat import apply_compat_passes
from export.optimize import kernel_summary, model_op_support, nb_kernels, nb_lite_version, optimize
from export.precision import Precision


@pytest.fixture(scope="module")
def conv_dir(tmp_path_factory) -> Path:
    return programs.save_legacy(programs.ConvRelu(), tmp_path_factory.mktemp("conv") / "model", [1, 3, 16, 16])


@pytest.fixture(scope="module")
def conv_x86_nb(conv_dir: Path, tmp_path_factory) -> Path:
    return optimize(conv_dir, tmp_path_factory.mktemp("nb") / "conv_x86", target="x86")


def test_x86_conversion_runs_and_matches_paddle(conv_dir: Path, conv_x86_nb: Path):
    assert conv_x86_nb.name == "conv_x86.nb" and conv_x86_nb.is_file()
    assert [p.name for p in conv_x86_nb.parent.iterdir()] == ["conv_x86.nb"], "temporary files left behind"
    x = np.random.RandomState(1).rand(1, 3, 16, 16).astype("float32")
    run = programs.run_lite(conv_x86_nb, x)
    assert run.ok, run.log[-2000:]
    assert programs.max_abs_diff(programs.run_paddle(conv_dir, x), run.outputs) <= 1e-5


def test_arm_conversion_has_arm_float_kernels(conv_dir: Path, tmp_path: Path):
    nb = optimize(conv_dir, tmp_path / "conv_arm", target="arm")
    kernels = nb_kernels(nb)
    conv = [k for k in kernels if k.op_type == "conv2d"]
    assert conv and all(k.target == "arm" and k.precision == "float" for k in conv), kernels
    assert nb_lite_version(nb).startswith("v2.13")


def test_x86_kernels_are_read_from_the_nb(conv_x86_nb: Path):
    summary = kernel_summary(nb_kernels(conv_x86_nb))
    assert summary.get("conv2d:float") == 1, summary
    assert {"feed:any", "fetch:any"} <= set(summary), summary


def test_weight_only_int8_is_smaller_but_float_compute(tmp_path: Path):
    """opt's --quant_model stores weights as int8 and dequantizes at load: the kernels stay float."""
    source = programs.save_legacy(programs.FlattenLinear(), tmp_path / "src", [1, 4, 4, 4])
    fixed = tmp_path / "fixed"
    apply_compat_passes(source, fixed)
    plain = optimize(fixed, tmp_path / "plain", target="arm")
    weight_only = optimize(fixed, tmp_path / "wq", target="arm", precision=Precision.WEIGHT_ONLY_INT8)
    assert weight_only.stat().st_size < plain.stat().st_size
    assert not any(k.precision == "int8" for k in nb_kernels(weight_only)), "weight-only quantization is not int8 compute"
    assert "not int8 inference" in Precision.WEIGHT_ONLY_INT8.describe()


_PTQ = r"""
import sys
import export
import numpy as np
import paddle
paddle.enable_static()
from paddle.static.quantization import PostTrainingQuantization
rng = np.random.RandomState(0)
batches = [{"x": rng.rand(1, 3, 16, 16).astype("float32")} for _ in range(4)]
ptq = PostTrainingQuantization(
    executor=paddle.static.Executor(paddle.CPUPlace()), model_dir=sys.argv[1], model_filename="inference.pdmodel",
    params_filename="inference.pdiparams", data_loader=lambda: iter(batches), batch_nums=4, algo="avg",
    onnx_format=True, quantizable_op_type=["conv2d"], deploy_backend="arm")
ptq.quantize()
ptq.save_quantized_model(sys.argv[2], model_filename="inference.pdmodel", params_filename="inference.pdiparams")
"""


def test_nb_kernels_sees_int8_kernels_of_a_ptq_program(conv_dir: Path, tmp_path: Path):
    """Paddle's own PTQ (in a child process: it switches Paddle to static mode) -> ARM .nb -> int8 conv."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _PTQ, str(conv_dir), str(tmp_path / "int8")], capture_output=True,
                          text=True, cwd=Path(export.__file__).parent.parent, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    kernels = nb_kernels(optimize(tmp_path / "int8", tmp_path / "int8_arm", target="arm"))
    assert [k.precision for k in kernels if k.op_type == "conv2d"] == ["int8"], kernel_summary(kernels)


def test_opencl_conversion_uses_opencl_kernels(conv_dir: Path, tmp_path: Path):
    kernels = nb_kernels(optimize(conv_dir, tmp_path / "conv_cl", target="opencl"))
    assert [k.target for k in kernels if k.op_type == "conv2d"] == ["opencl"], kernel_summary(kernels)


def test_fp16_arm_conversion_uses_fp16_kernels(conv_dir: Path, tmp_path: Path):
    nb = optimize(conv_dir, tmp_path / "conv_fp16", target="arm", precision=Precision.FP16)
    assert any(k.op_type == "conv2d" and k.precision == "fp16" for k in nb_kernels(nb)), nb_kernels(nb)


def test_op_support_table_names_the_unsupported_op(tmp_path: Path):
    source = programs.save_legacy(programs.Bmm(), tmp_path / "bmm", [2, 3, 4])
    support = model_op_support(source, target="arm")
    assert support["bmm"] is False and support["transpose2"] is True


def test_unsupported_op_is_named_and_nothing_is_written(tmp_path: Path):
    source = programs.save_legacy(programs.Bmm(), tmp_path / "bmm", [2, 3, 4])
    out = tmp_path / "out"
    with pytest.raises(ExportError) as failure:
        optimize(source, out / "bmm", target="arm")
    message = str(failure.value)
    assert "ops with no Lite kernel for arm: bmm" in message
    assert "bmm_to_matmul_v2" in message  # the compat pass that would fix it
    assert "No kernels found for bmm" in message  # opt's own last lines
    assert list(out.iterdir()) == []


def test_op_without_any_lite_kernel_is_named(tmp_path: Path):
    source = programs.save_legacy(programs.Erfinv(), tmp_path / "erfinv", [2, 4])
    with pytest.raises(ExportError) as failure:
        optimize(source, tmp_path / "out" / "erfinv", target="x86")
    message = str(failure.value)
    assert "ops with no Lite kernel for x86: erfinv" in message, message
    assert "compat rewrites" not in message  # nothing the compat stage could do
    assert list((tmp_path / "out").iterdir()) == []


def test_segfault_becomes_an_error_mentioning_the_crash(tmp_path: Path):
    """flatten (no XShape) -> matmul_v2 without the compat pass: opt segfaults on x86."""
    source = programs.save_legacy(programs.FlattenLinear(), tmp_path / "flat", [1, 4, 4, 4])
    out = tmp_path / "out"
    (out).mkdir()
    (out / "keep.txt").write_text("unrelated file")
    with pytest.raises(ExportError) as failure:
        optimize(source, out / "flat", target="x86")
    message = str(failure.value)
    assert "crashed with SIGSEGV" in message
    assert "add_missing_xshape" in message and "flatten_contiguous_range" in message
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_bad_arguments_are_rejected(conv_dir: Path, tmp_path: Path):
    with pytest.raises(ExportError, match="unknown Lite target 'gpu'"):
        optimize(conv_dir, tmp_path / "m", target="gpu")
    with pytest.raises(ValueError, match="weight-only-int4"):
        Precision("weight-only-int4")
    with pytest.raises(ExportError, match="ARMv8.2"):
        optimize(conv_dir, tmp_path / "m", target="x86", precision=Precision.FP16)
    with pytest.raises(ExportError, match="no inference.pdmodel"):
        optimize(tmp_path, tmp_path / "m", target="arm")
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ExportError, match="cannot create output directory"):
        optimize(conv_dir, tmp_path / "a_file" / "sub" / "m", target="arm")
    with pytest.raises(ExportError, match="too short"):
        (tmp_path / "empty.nb").write_bytes(b"")
        nb_kernels(tmp_path / "empty.nb")


def test_timeout_becomes_an_error(conv_dir: Path, tmp_path: Path):
    with pytest.raises(ExportError, match="did not finish"):
        optimize(conv_dir, tmp_path / "slow", target="arm", timeout_s=0.01)
    assert list(tmp_path.iterdir()) == []
