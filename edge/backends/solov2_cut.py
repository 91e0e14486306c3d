"""Cut an exported SOLOv2 program before its mask head's per-candidate part (see edge/solov2.py).

The legacy program (`inference.pdmodel`) is pruned to fetch the three tensors the head starts
from: the point-NMSed category scores (cells x classes), the per-cell kernels (cells x C) and the
mask feature (1 x C x h x w). They are found by the program's structure, not by variable names:
the head's only convolution whose filter is computed (not a parameter) takes the mask feature and
the gathered kernels; the head's first `where` op selects from the category scores. Both program formats: a legacy
`inference.pdmodel` is pruned in memory; a PIR `inference.json` (what PaddleX 3 archives hold) is pruned
by Paddle's own `save_inference_model` into a temporary directory, loaded, then deleted.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional, Tuple, Union

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
    import paddle
    from paddle.pir_utils import OldIrGuard

    with OldIrGuard():
        paddle.enable_static()
        try:
            scope = paddle.static.Scope()
            with paddle.static.scope_guard(scope):
                exe = paddle.static.Executor(paddle.CPUPlace())
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


def _cut_pir(program: Path, workdir: str) -> Optional[Tuple[str, str]]:
    import paddle
    from paddle.pir_utils import IrGuard

    with IrGuard():
        paddle.enable_static()
        try:
            scope = paddle.static.Scope()
            with paddle.static.scope_guard(scope):
                exe = paddle.static.Executor(paddle.CPUPlace())
                prog, _, _ = paddle.static.load_inference_model(str(program.with_suffix("")), exe)
                found = _pir_head_inputs(prog)
                if found is None:
                    return None
                image = [op.result(0) for op in prog.global_block().ops
                         if op.name() == "pd_op.data" and op.attrs().get("name") == "image"]
                prefix = str(Path(workdir) / "solov2_cut")
                paddle.static.save_inference_model(prefix, image, list(found), exe, program=prog)
                return prefix + ".json", prefix + ".pdiparams"
        finally:
            paddle.disable_static()


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
