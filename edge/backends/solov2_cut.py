"""Cut an exported SOLOv2 program before its mask head's per-candidate part (see edge/solov2.py).

The legacy program (`inference.pdmodel`) is pruned to fetch the three tensors the head starts
from: the point-NMSed category scores (cells x classes), the per-cell kernels (cells x C) and the
mask feature (1 x C x h x w). They are found by the program's structure, not by variable names:
the head's only convolution whose filter is computed (not a parameter) takes the mask feature and
the gathered kernels; the head's first `where` op selects from the category scores. A PIR program
(`inference.json`) is not cut (its pruning API is not public in Paddle 3.0): it runs whole.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

from ..solov2 import CELLS


def cut_solov2_program(program: Path, params: Path) -> Optional[Tuple[bytes, bytes]]:
    """(program bytes, params bytes) of the pruned legacy program fetching ``cate, kernels, feature``,
    or None when `program` is not a legacy SOLOv2 program of the expected structure."""
    if program.suffix != ".pdmodel":
        return None
    import paddle
    from paddle.pir_utils import OldIrGuard

    with OldIrGuard():
        paddle.enable_static()
        try:
            scope = paddle.static.Scope()
            with paddle.static.scope_guard(scope):
                exe = paddle.static.Executor(paddle.CPUPlace())
                if params != program.with_suffix(".pdiparams"):
                    return None
                prog, feed_names, _ = paddle.static.load_inference_model(str(program.with_suffix("")), exe)
                block = prog.global_block()
                found = _head_inputs(block)
                if found is None:
                    return None
                feeds = [block.var(n) for n in feed_names if n == "image"]
                fetches = [block.var(n) for n in found]
                pruned = paddle.static.normalize_program(prog, feeds, fetches)
                return (paddle.static.serialize_program(feeds, fetches, program=pruned),
                        paddle.static.serialize_persistables(feeds, fetches, exe, program=pruned))
        finally:
            paddle.disable_static()


def _producer(block, name: str):
    for op in block.ops:
        if name in op.output_arg_names:
            return op
    return None


def _head_inputs(block) -> Optional[Tuple[str, str, str]]:
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
