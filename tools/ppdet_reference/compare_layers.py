"""Layer-by-layer comparison of our network with PaddleDetection's (debugging aid, project venv).

    .venv/bin/python tools/ppdet_reference/compare_layers.py OUT_DIR [--graph reference|edge]

OUT_DIR is a make_reference.py output made with --intermediates. Builds our network with the same
weights (from OUT_DIR/recipe.npz), records the outputs of the sub-layers of the same names with
forward hooks on the same input, and prints the largest difference per layer, in forward order:
the first layer that differs is where to look.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import weights_recipe  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--graph", default="reference", choices=["reference", "edge"])
    args = parser.parse_args(argv)

    import export  # noqa: F401  (PIR off before paddle)
    import paddle

    from export.networks import build_network

    meta = json.loads((args.out / "meta.json").read_text())
    weights = weights_recipe.materialise(weights_recipe.load_recipe(args.out / "recipe.npz"), meta["variant"], meta["seed"])
    net = build_network(meta["model"], num_classes=meta["num_classes"], input_size=meta["size"], graph=args.graph,
                        weights=weights)
    theirs = np.load(args.out / "intermediates.npz")
    io = np.load(args.out / "io.npz")
    layers = dict(net.named_sublayers())
    records = {}

    def hook_for(name):
        def hook(layer, inputs, output):
            flat = output if isinstance(output, (list, tuple)) else [output]
            for i, t in enumerate(flat):
                if isinstance(t, paddle.Tensor):
                    records[name if len(flat) == 1 else f"{name}#{i}"] = t.numpy()
        return hook

    wanted = sorted({k.split("#")[0] for k in theirs.files})
    missing = [n for n in wanted if n not in layers]
    for n in wanted:
        if n in layers:
            layers[n].register_forward_post_hook(hook_for(n))
    with paddle.no_grad():
        outs = net(*(paddle.to_tensor(io[k]) for k in ("im_shape", "image", "scale_factor")))
    for key in theirs.files:
        ref = theirs[key]
        mine = records.get(key)
        if mine is None:
            print(f"{key:40s} (not recorded here)")
            continue
        if mine.shape != ref.shape:
            print(f"{key:40s} shape {mine.shape} vs {ref.shape}")
            continue
        diff = np.abs(mine - ref).max()
        print(f"{key:40s} max|diff| {diff:.3e}  (max|ref| {np.abs(ref).max():.3e})")
    if missing:
        print("no such layer here:", missing)
    bbox = outs[0].numpy()
    print("ours top rows:\n", bbox[np.argsort(-bbox[:, 1])[:5]])
    print("theirs top rows:\n", io["bbox"][np.argsort(-io["bbox"][:, 1])[:5]])


if __name__ == "__main__":
    main()
