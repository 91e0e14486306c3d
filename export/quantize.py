"""The quantize stage: calibrated post-training INT8 of a legacy inference directory, head kept in float.

Public function
---------------
``quantize(model_dir, out_dir, calib_images, *, algo="avg", batch_nums=None, keep_float_ops=None,
preprocess=None, quantizable_op_types=QUANTIZABLE_OP_TYPES, auto_keep_head=True,
min_images=MIN_CALIBRATION_IMAGES) -> dict``

Writes ``out_dir/inference.pdmodel`` + ``inference.pdiparams`` (+ a copy of ``inference.yml``):
the program with ``quantize_linear`` / ``dequantize_linear`` ops (ONNX-style, ``onnx_format=True``)
that Paddle Lite's ``opt`` folds into int8 kernels, and that Paddle Inference runs as simulated
quantization. The compat passes (export.compat) are applied to Paddle's output, so ``out_dir`` goes
straight to ``export.optimize.optimize``. ``out_dir`` appears only on success (built in a sibling
temporary directory, then renamed). Returns the calibration record that goes into the bundle's manifest::

    {"scheme": "int8-ptq", "algo", "count", "sha256", "images", "batch_nums",
     "quantizable_op_types", "quantized_ops": {type: count}, "kept_float": [{"type", "output"}],
     "weight_bits": 8, "activation_bits": 8, "format", "compat_passes", "seconds"}

``preprocess(image_bgr: np.ndarray HxWx3 uint8) -> {feed name: array}`` makes the feeds; the
default is the runtime's ``edge.preprocess.Preprocessor`` built from ``model_dir/inference.yml``,
so calibration sees exactly what inference will. ``algo``: one of ``ALGOS`` (``DEFAULT_ALGO`` =
"avg"; "min_max" is refused: Paddle writes it as op attributes, not quantize ops). Fewer than
``min_images`` images log a warning. Also public: ``list_calibration_images(folder, count)``,
``calibration_hash(images)``, ``count_quantized_ops(model_file)``, ``select_float_ops(...)``,
``DEFAULT_CALIB_DIR`` (the shipped images).

``sha256`` hashes the sorted list of the images' own sha256 digests, so it depends on the
image set only (not on file names or order).

What stays float
----------------
Only ops of ``quantizable_op_types`` (conv2d, depthwise_conv2d, matmul, matmul_v2, mul) are
quantized; every other op (sigmoid, box decode arithmetic, softmax, interpolation, ...) runs in
float. Paddle's ARM config would also sample the output of ~100 other op types and put
``only_observer`` quantize/dequantize pairs after them: they do not change values in Paddle, but
they hand Lite an output scale for e.g. the head's elementwise ops (which Lite may then run with
int8 kernels), and they are most of the calibration time (below); they are turned off here.
Among the quantizable ops, these are kept float (``auto_keep_head=True``):

* ops that multiply two activations (no weight input): the mask coefficient x prototype matmul
  and attention score matmuls, whose ranges vary per image far more than a weight's;
* the last quantizable op on every path to a program output (class scores, box regression,
  mask coefficients / prototypes projections), walking back through float ops but not through
  shape-only ops (``shape``, ``fill_any_like``, ...);
* ops whose output tensor name is in ``keep_float_ops``.
Kept ops are marked with the ``skip_quant`` namescope that Paddle's quantization passes honour.

Calibration time
----------------
Paddle's PTQ cost = a fixed part, graph rewriting that is quadratic in the program size (every
inserted quantize/dequantize pair re-scans all graph nodes: ``IrGraph.link_to`` asserts
membership in a freshly built set of all nodes, ``all_persistable_nodes`` walks all nodes), plus
per image one Executor forward pass (two for KL / hist) with every sampled activation kept
persistable and copied to numpy. With observers on ~100 op types the fixed part dominates (on a
ResNet-50 + 12-layer transformer proxy: 104 s of 138 s for 4 images). Here: observers only where
an op is quantized (541 -> 155 insertions on that proxy), IrGraph's O(N) asserts skipped while
the passes run (``_linear_time_graph_edits``), histograms binned in O(n); what remains per image
is about one FP32 forward pass.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Set

import numpy as np

import export  # noqa: F401  (PIR off before paddle is imported)
from edge.errors import ExportError
from edge.files import move_into_place
from edge.inference_dir import INFERENCE_YML, LEGACY_PROGRAM as MODEL_FILE, PARAMS_FILE
from edge.inputs import IMAGE_SUFFIXES
from export.compat import apply_compat_passes

logger = logging.getLogger(__name__)

# Paddle's "min_max" writes thresholds as op attributes instead of quantize_linear ops, which
# Lite does not fold into int8 kernels; it is refused rather than silently giving a float model.
ALGOS = ("avg", "hist", "abs_max", "KL", "mse")
DEFAULT_ALGO = "avg"  # one pass per image; KL / hist need two passes plus histograms
QUANTIZABLE_OP_TYPES = ("conv2d", "depthwise_conv2d", "matmul", "matmul_v2", "mul")
MIN_CALIBRATION_IMAGES = 16
DEFAULT_CALIB_DIR = Path(__file__).with_name("calib_images")
SKIP_NAMESCOPE = "/skip_quant/"
# Ops whose outputs depend on their input's shape only: walking back from an output stops there,
# or e.g. anchors built from a feature map's shape would keep the backbone conv float.
SHAPE_ONLY_OPS = ("shape", "shape64", "size", "fill_any_like", "fill_zeros_like", "fill_constant_batch_size_like")

Preprocess = Callable[[np.ndarray], Mapping[str, np.ndarray]]


def list_calibration_images(folder: Path = DEFAULT_CALIB_DIR, count: Optional[int] = None) -> List[Path]:
    """Images in `folder` (sorted by name), the first `count` of them when given."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"calibration folder {folder} does not exist; pass --calib DIR with a few dozen images")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise ExportError(f"calibration folder {folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return images[:count] if count else images


def calibration_hash(images: Sequence[Path]) -> str:
    """sha256 over the sorted sha256 digests of the images' bytes."""
    digests = sorted(hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in images)
    return hashlib.sha256("\n".join(digests).encode("ascii")).hexdigest()


# ------------------------------------------------------------------------------ choosing float ops
def _producers(ops) -> Dict[str, Any]:
    return {name: op for op in ops for name in op.output_arg_names}


def select_float_ops(
    program, fetch_names: Sequence[str], quantizable_op_types: Sequence[str], keep_float_ops: Iterable[str] = (),
    auto_keep_head: bool = True,
) -> List[Any]:
    """Quantizable ops of `program` that must stay float (see the module docstring)."""
    block = program.global_block()
    ops = list(block.ops)
    quantizable = [op for op in ops if op.type in quantizable_op_types]
    keep: Dict[int, Any] = {}
    wanted = set(keep_float_ops)
    unknown = wanted - {n for op in ops for n in op.output_arg_names}
    if unknown:
        raise ExportError(f"keep_float_ops names tensors the program does not produce: {sorted(unknown)[:5]}")
    for op in quantizable:
        if wanted.intersection(op.output_arg_names):
            keep[id(op)] = op
    persistable = {v.name for v in program.list_vars() if v.persistable}
    if auto_keep_head:
        for op in quantizable:
            if not any(n in persistable for n in op.input_arg_names):
                keep[id(op)] = op  # activation x activation
        for op in _last_quantizable_before_outputs(ops, fetch_names, quantizable_op_types):
            keep[id(op)] = op
    # A weight shared by a float op and a quantized op would be saved as int8 and then read as
    # float by the float op (Mask-RT-DETR shares a Linear between query selection and the decoder):
    # every op that shares a weight with a float op stays float too.
    float_weights = {n for op in keep.values() for n in op.input_arg_names if n in persistable}
    for op in quantizable:
        if float_weights.intersection(op.input_arg_names):
            keep[id(op)] = op
    return [op for op in ops if id(op) in keep]


def _last_quantizable_before_outputs(ops, fetch_names: Sequence[str], quantizable_op_types) -> List[Any]:
    """Walk back from each output through float ops; the first quantizable ops met are the head's."""
    producers = _producers(ops)
    found: Dict[int, Any] = {}
    seen: Set[str] = set()
    stack = list(fetch_names)
    while stack:
        name = stack.pop()
        if name in seen or name not in producers:
            continue
        seen.add(name)
        op = producers[name]
        if op.type in quantizable_op_types:
            found[id(op)] = op
        elif op.type not in SHAPE_ONLY_OPS:
            stack.extend(op.input_arg_names)
    return list(found.values())


# ------------------------------------------------------------------------------ calibration data
class _CalibrationFeeds:
    """What PostTrainingQuantization wants as `data_loader`: len() and a call that yields feed dicts."""

    def __init__(self, images: Sequence[Path], preprocess: Preprocess, feed_names: Sequence[str]):
        self.images, self.preprocess, self.feed_names = list(images), preprocess, list(feed_names)

    def __len__(self) -> int:
        return len(self.images)

    def __call__(self):
        import cv2

        from edge.progress import bar

        for path in bar(self.images, desc="calibration"):
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise ExportError(f"calibration image {path} cannot be read; remove it or convert it to JPEG/PNG")
            feeds = self.preprocess(image)
            missing = [n for n in self.feed_names if n not in feeds]
            if missing:
                raise ExportError(f"the calibration pre-processing gives no {missing} for {path}; the program needs {self.feed_names}")
            yield {n: np.ascontiguousarray(feeds[n], dtype=np.float32) for n in self.feed_names}


def _default_preprocess(model_dir: Path) -> Preprocess:
    from edge.preprocess import Preprocessor
    from edge.spec import ModelSpec

    return Preprocessor(ModelSpec.from_inference_yml(model_dir / INFERENCE_YML))


# ------------------------------------------------------------------------------ quantize
def _make_ptq(paddle_quant, **kwargs):
    """PostTrainingQuantization that samples and observes only the ops it really quantizes."""

    class _HeadAwarePTQ(paddle_quant.PostTrainingQuantization):
        keep_float_names: Sequence[str] = ()
        auto_keep_head: bool = True
        kept_float: List[Dict[str, str]] = []

        def _load_model_data(self) -> None:
            super()._load_model_data()
            ops = select_float_ops(
                self._program, [v.name for v in self._fetch_list], self.quant_config.weight_quant_operation_types,
                self.keep_float_names, self.auto_keep_head,
            )
            for op in ops:
                # The quantization passes skip ops whose namescope contains "skip_quant".
                op._set_attr("op_namescope", SKIP_NAMESCOPE)
            self.kept_float = [{"type": op.type, "output": op.output_arg_names[0]} for op in ops]

        def _sample_histogram(self) -> None:
            # Same histogram as Paddle's, but numpy's uniform-bin path (O(n)) instead of a
            # searchsorted over the 2049 explicit edges: ~5x faster per tensor for KL / hist.
            for var_name in self._quantized_act_var_name:
                tensor = paddle_quant.utils.load_variable_data(self._scope, var_name)
                if tensor.size == 0 or var_name not in self._sampling_act_histogram:
                    self._zero_size_var_names.add(var_name)
                    continue
                hist, edges = self._sampling_act_histogram[var_name]
                counts, _ = np.histogram(np.abs(tensor), bins=len(edges) - 1, range=(edges[0], edges[-1]))
                self._sampling_act_histogram[var_name][0] = hist + counts

    ptq = _HeadAwarePTQ(**kwargs)
    ptq.quant_config = _NoObserverConfig(ptq.quant_config)
    return ptq


class _NoObserverConfig:
    """Wraps Paddle's quantizer config: same quantized ops, no observers on any other op type."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    @property
    def observer_operation_types(self) -> List[str]:
        return []


def quantize(
    model_dir: Path,
    out_dir: Path,
    calib_images: Sequence[Path],
    *,
    algo: str = DEFAULT_ALGO,
    batch_nums: Optional[int] = None,
    keep_float_ops: Iterable[str] = (),
    preprocess: Optional[Preprocess] = None,
    quantizable_op_types: Sequence[str] = QUANTIZABLE_OP_TYPES,
    auto_keep_head: bool = True,
    min_images: int = MIN_CALIBRATION_IMAGES,
) -> Dict[str, Any]:
    """Quantize the legacy inference directory `model_dir` into `out_dir`; returns the record."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if algo not in ALGOS:
        why = " (it writes no quantize_linear ops that Lite can fold)" if algo == "min_max" else ""
        raise ExportError(f"calibration algorithm {algo!r} is not supported{why}; choose one of {', '.join(ALGOS)}")
    bad_types = sorted(set(quantizable_op_types) - set(QUANTIZABLE_OP_TYPES))
    if bad_types:
        raise ExportError(f"only {', '.join(QUANTIZABLE_OP_TYPES)} are quantized, not {bad_types}")
    for name in (MODEL_FILE, PARAMS_FILE):
        if not (model_dir / name).is_file():
            raise ExportError(f"{model_dir / name} is missing: INT8 quantization needs a legacy inference directory")
    images = [Path(p) for p in calib_images]
    if not images:
        raise ExportError("no calibration images: pass --calib DIR (a few dozen images like the deployment's)")
    absent = [str(p) for p in images if not p.is_file()]
    if absent:
        raise ExportError(f"calibration images not found: {absent[:3]}")
    if batch_nums is not None and not 1 <= batch_nums <= len(images):
        raise ExportError(f"batch_nums={batch_nums} must be between 1 and the {len(images)} calibration images")
    if len(images) < min_images:
        logger.warning(
            "only %d calibration images (fewer than %d): activation ranges may not represent real inputs and "
            "INT8 accuracy can drop; pass --calib DIR with a few dozen images from the deployment domain",
            len(images), min_images,
        )
    preprocess = preprocess or _default_preprocess(model_dir)

    import paddle
    from paddle.static import quantization as paddle_quant

    started = time.perf_counter()
    was_dynamic = paddle.in_dynamic_mode()
    paddle.enable_static()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        scope = paddle.static.Scope()
        with paddle.static.scope_guard(scope):
            exe = paddle.static.Executor(paddle.CPUPlace())
            feed_names = _feed_names(model_dir / MODEL_FILE)
            ptq = _make_ptq(
                paddle_quant,
                executor=exe, scope=scope, model_dir=str(model_dir), model_filename=MODEL_FILE,
                params_filename=PARAMS_FILE, data_loader=_CalibrationFeeds(images, preprocess, feed_names),
                batch_size=1, batch_nums=batch_nums or len(images), algo=algo,
                quantizable_op_type=list(quantizable_op_types), onnx_format=True, deploy_backend="arm",
                weight_quantize_type="channel_wise_abs_max",
            )
            ptq.keep_float_names = list(keep_float_ops)
            ptq.auto_keep_head = auto_keep_head
            with _linear_time_graph_edits():
                ptq.quantize()
            ptq.save_quantized_model(str(staging / "ptq"), model_filename=MODEL_FILE, params_filename=PARAMS_FILE)
        if (model_dir / INFERENCE_YML).is_file():
            shutil.copyfile(model_dir / INFERENCE_YML, staging / "ptq" / INFERENCE_YML)
        # Paddle's save re-creates what Lite cannot read (0-D @scale parameters, reshape ops
        # without XShape): the compat passes make the quantized program Lite-loadable again.
        compat = apply_compat_passes(staging / "ptq", staging / "lite")
        quantized = count_quantized_ops(staging / "lite" / MODEL_FILE, quantizable_op_types)
        if not quantized:
            raise ExportError(f"{model_dir}: no op was quantized (quantizable types: {', '.join(quantizable_op_types)})")
        move_into_place(staging / "lite", out_dir)
        shutil.rmtree(staging, ignore_errors=True)
    except ExportError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except Exception as exc:  # Paddle raises bare AssertionError / RuntimeError / ValueError
        shutil.rmtree(staging, ignore_errors=True)
        raise ExportError(f"INT8 quantization of {model_dir} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        if was_dynamic:
            paddle.disable_static()
    seconds = time.perf_counter() - started
    record = {
        "scheme": "int8-ptq",
        "algo": algo,
        "count": len(images) if batch_nums is None else batch_nums,
        "sha256": calibration_hash(images if batch_nums is None else images[:batch_nums]),
        "images": [p.name for p in (images if batch_nums is None else images[:batch_nums])],
        "batch_nums": batch_nums or len(images),
        "quantizable_op_types": list(quantizable_op_types),
        "quantized_ops": quantized,
        "kept_float": ptq.kept_float,
        "weight_bits": 8,
        "activation_bits": 8,
        "format": "quantize_linear/dequantize_linear (per-channel weights, per-tensor activations)",
        "compat_passes": compat.changed_passes,
        "seconds": round(seconds, 2),
    }
    logger.info("quantized %s in %.1f s: %s; kept float: %d ops", model_dir, seconds, quantized, len(ptq.kept_float))
    return record


def _feed_names(model_file: Path) -> List[str]:
    """The program's feed targets in feed order, read from the ProgramDesc (no parameters loaded)."""
    from paddle.base.proto import framework_pb2

    try:
        desc = framework_pb2.ProgramDesc.FromString(Path(model_file).read_bytes())
    except Exception as exc:  # protobuf's DecodeError has no stable import path
        raise ExportError(f"{model_file} is not a readable Paddle program ({exc}); re-export the model") from None
    feeds = []
    for op in desc.blocks[0].ops:
        if op.type == "feed":
            col = next((a.i for a in op.attrs if a.name == "col"), len(feeds))
            feeds.append((col, op.outputs[0].arguments[0]))
    return [name for _, name in sorted(feeds)]


@contextlib.contextmanager
def _linear_time_graph_edits():
    """Drop two O(graph) sanity asserts from IrGraph while Paddle's quantization passes run.

    `IrGraph.link_to` and `update_input_link` assert that their nodes are in `graph.nodes()`,
    which builds a Python set of every node on each call; the passes call them a dozen times
    per quantized tensor, so rewriting costs O(quantized tensors x graph size). The nodes
    passed in always come from the same graph, so the check is skipped; restored on exit.
    """
    from paddle.base.framework import IrGraph

    originals = IrGraph.link_to, IrGraph.update_input_link

    def link_to(self, node_in, node_out):
        node_in.append_output(node_out)
        node_out.append_input(node_in)

    def update_input_link(self, old_input_node, new_input_node, op_node):
        old_input_node.remove_output(op_node)
        op_node.remove_input(old_input_node)
        new_input_node.append_output(op_node)
        op_node.append_input(new_input_node)
        op_node.rename_input(old_input_node.name(), new_input_node.name())

    IrGraph.link_to, IrGraph.update_input_link = link_to, update_input_link
    try:
        yield
    finally:
        IrGraph.link_to, IrGraph.update_input_link = originals


def count_quantized_ops(model_file: Path, quantizable_op_types: Sequence[str] = QUANTIZABLE_OP_TYPES) -> Dict[str, int]:
    """Ops of the quantizable types that read at least one dequantized (int8-simulated) input."""
    from paddle.base.proto import framework_pb2

    desc = framework_pb2.ProgramDesc.FromString(Path(model_file).read_bytes())
    dequantized: Set[str] = set()
    for block in desc.blocks:
        for op in block.ops:
            if op.type == "dequantize_linear":
                dequantized.update(a for v in op.outputs for a in v.arguments)
    counts: Counter = Counter()
    for block in desc.blocks:
        for op in block.ops:
            if op.type in quantizable_op_types and any(a in dequantized for v in op.inputs for a in v.arguments):
                counts[op.type] += 1
    return dict(sorted(counts.items()))
