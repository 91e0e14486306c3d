"""Cut an exported program before a post-processing step that we do faster ourselves, same results.

SOLOv2 (see edge/solov2.py): cut before its mask head's per-candidate part. The legacy program (`inference.pdmodel`) is pruned to fetch the three tensors the head starts
from: the point-NMSed category scores (cells x classes), the per-cell kernels (cells x C) and the
mask feature (1 x C x h x w). They are found by the program's structure, not by variable names:
the head's only convolution whose filter is computed (not a parameter) takes the mask feature and
the gathered kernels; the head's first `where` op selects from the category scores. Both program formats: a legacy
`inference.pdmodel` is pruned in memory; a PIR `inference.json` (what PaddleX 3 archives hold) is pruned
by Paddle's own `save_inference_model` into a temporary directory, loaded, then deleted.

MaskRCNN / Cascade-MaskRCNN (legacy programs): cut before PaddleDetection's `MaskPostProcess`, which pastes
every box's 28x28 mask into a full-image mask (a `grid_sample` over the whole image per box, ~10 % of the
program); the program then gives ``bbox, bbox_num`` and the 28x28 masks, and edge/postprocess.py pastes
each kept box's mask inside its box only (the `roi` mask layout). A PIR program runs whole.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional, Tuple, Union

from ..solov2 import CELLS


Cut = Union[Tuple[bytes, bytes], Tuple[str, str]]


def cut_solov2_program(program: Path, params: Path, workdir: Optional[str] = None) -> Optional[Cut]:
    """The pruned program fetching ``cate, kernels, feature``: (program bytes, params bytes) for a legacy
    program, (program file, params file) written under `workdir` for a PIR one; None when `program` is
    not a SOLOv2 program of the expected structure."""
    if params != program.with_suffix(".pdiparams"):
        return None
    if program.suffix == ".json":
        return _cut_pir(program, workdir) if workdir else None
    if program.suffix != ".pdmodel":
        return None
    return _prune_legacy(program, _head_inputs, feeds=("image",))  # the cut head reads the shapes from our feeds


def cut_rcnn_program(program: Path, params: Path) -> Optional[Tuple[bytes, bytes]]:
    """The pruned legacy MaskRCNN/Cascade program fetching ``bbox, bbox_num`` and the (N, 28, 28) mask
    probabilities before the paste; None for a PIR program or an unexpected structure."""
    if program.suffix != ".pdmodel" or params != program.with_suffix(".pdiparams"):
        return None
    return _prune_legacy(program, _paste_inputs, feeds=("im_shape", "image", "scale_factor"))


@contextmanager
def _loaded(program: Path, pir: bool) -> Iterator[tuple]:
    """(executor, program, feed names, fetch vars) of an inference program, in static mode under the IR
    it was saved with, in a scope of its own; the caller's static/dynamic mode is restored after."""
    import paddle
    from paddle.pir_utils import IrGuard, OldIrGuard

    with IrGuard() if pir else OldIrGuard():
        was_dynamic = paddle.in_dynamic_mode()
        paddle.enable_static()
        try:
            with paddle.static.scope_guard(paddle.static.Scope()):
                exe = paddle.static.Executor(paddle.CPUPlace())
                yield (exe, *paddle.static.load_inference_model(str(program.with_suffix("")), exe))
        finally:
            if was_dynamic:
                paddle.disable_static()


def _prune_legacy(program: Path, find, feeds: Tuple[str, ...]) -> Optional[Tuple[bytes, bytes]]:
    import paddle

    with _loaded(program, pir=False) as (exe, prog, feed_names, fetch_vars):
        found = find(prog, [v.name for v in fetch_vars])
        if found is None:
            return None
        block = prog.global_block()
        fetches = [block.var(n) for n in found]
        feed_vars = [block.var(n) for n in feed_names if n in feeds]
        pruned = paddle.static.normalize_program(prog, feed_vars, fetches)
        return (paddle.static.serialize_program(feed_vars, fetches, program=pruned),
                paddle.static.serialize_persistables(feed_vars, fetches, exe, program=pruned))


def _paste_inputs(prog, fetch_names) -> Optional[Tuple[str, str, str]]:
    """bbox and bbox_num (the program's first two outputs) and the masks the paste loop slices."""
    if len(fetch_names) != 3:
        return None
    for b in range(1, prog.num_blocks):
        block = prog.block(b)
        if not any(op.type == "grid_sampler" for op in block.ops):
            continue
        for op in block.ops:
            if op.type == "slice" and prog.global_block().has_var(op.input("Input")[0]):
                var = prog.global_block().var(op.input("Input")[0])
                if len(var.shape) == 3 and var.name not in fetch_names[:2]:
                    return fetch_names[0], fetch_names[1], var.name
    return None


def _cut_pir(program: Path, workdir: str) -> Optional[Tuple[str, str]]:
    import paddle

    with _loaded(program, pir=True) as (exe, prog, _, _):
        found = _pir_head_inputs(prog)
        if found is None:
            return None
        image = [op.result(0) for op in prog.global_block().ops
                 if op.name() == "pd_op.data" and op.attrs().get("name") == "image"]
        prefix = str(Path(workdir) / "solov2_cut")
        paddle.static.save_inference_model(prefix, image, list(found), exe, program=prog)
        return prefix + ".json", prefix + ".pdiparams"


def _pir_head_inputs(prog) -> Optional[Tuple[object, object, object]]:
    def source(op, i=0):
        return op.operand_source(i)

    def maker(value, name):
        op = value.get_defining_op()
        return op if op is not None and op.name() == name else None

    cate = kernels = feature = None
    for op in prog.global_block().ops:
        name = op.name()
        if name == "pd_op.where" and cate is None:
            x = source(op, 1)
            try:
                if list(x.shape)[:1] == [CELLS]:
                    cate = x
            except ValueError:  # not a dense tensor
                pass
        if name == "pd_op.conv2d" and maker(source(op, 1), "builtin.parameter") is None:
            unsq = maker(source(op, 1), "pd_op.unsqueeze")
            gather = unsq and maker(source(unsq), "pd_op.gather")
            concat = gather and maker(source(gather), "pd_op.concat")
            combine = concat and maker(source(concat), "builtin.combine")
            if combine:
                feature, kernels = source(op), source(combine)
    if any(v is None for v in (cate, kernels, feature)) or list(kernels.shape)[:1] != [CELLS]:  # (Values overload ==)
        return None
    return cate, kernels, feature


def _producer(block, name: str):
    for op in block.ops:
        if name in op.output_arg_names:
            return op
    return None


def _head_inputs(prog, fetch_names) -> Optional[Tuple[str, str, str]]:
    block = prog.global_block()
    cate = kernels = feature = None
    for op in block.ops:
        if op.type == "where" and cate is None:
            cate = op.input("X")[0]
        if op.type == "conv2d" and not block.var(op.input("Filter")[0]).persistable:
            feature = op.input("Input")[0]
            # filter <- unsqueeze2 <- gather(X = concat(kernels, fake row))
            unsq = _producer(block, op.input("Filter")[0])
            gather = unsq and _producer(block, unsq.input("X")[0])
            concat = gather and gather.type == "gather" and _producer(block, gather.input("X")[0])
            if concat and concat.type == "concat":
                kernels = concat.input("X")[0]
    if None in (cate, kernels, feature):
        return None
    if block.var(cate).shape[0] != CELLS or block.var(kernels).shape[0] != CELLS:
        return None
    return cate, kernels, feature
