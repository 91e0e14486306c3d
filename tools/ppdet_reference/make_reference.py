"""Run PaddleDetection itself on seeded weights and save what it computes (see README.md here).

Runs in PaddleDetection's own venv, with PaddleDetection's source on PYTHONPATH; the project never
imports this file. For one network, input size, class count, weights variant and seed:

1. build the model from the official config (num_classes, eval_size and TestReader's image shape
   overridden), under paddle.seed(seed): PaddleDetection's own initial weights;
2. describe those weights as a recipe (weights_recipe.py), materialise the variant from it and load
   that into the model (so the project can rebuild the same weights from the small recipe);
3. export with PaddleDetection's exporter (Trainer.export, as tools/export_model.py does);
4. run the exported model in Paddle Inference on the given image (resized and laid out as the
   config's TestReader does: Resize interp 2, no normalisation, CHW) and save inputs + raw outputs;
5. optionally (--intermediates) run the dygraph model with forward hooks on named sub-layers and
   save their outputs, for layer-by-layer comparison (compare_layers.py).

Output directory <out>/: recipe.npz, model.pdparams, export/ (PaddleDetection's export), io.npz
(im_shape, image, scale_factor, bbox, bbox_num, mask), meta.json, [intermediates.npz].
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import weights_recipe  # noqa: E402  (numpy only, shared with the project's tests)

CONFIGS = {
    "PP-YOLOE_seg-S": "configs/ppyoloe_seg/ppyoloe_seg_s_80e_coco.yml",
    "Mask-RT-DETR-S": "configs/mask_rtdetr/mask_rtdetr_hgnetv2_s_6x_coco.yml",
}

# sub-layers whose outputs --intermediates records (same names in the project's networks)
HOOKED = {
    "Mask-RT-DETR-S": ["backbone.stem", "backbone.stages.0", "backbone.stages.1", "backbone.stages.2",
                       "backbone.stages.3", "neck.input_proj.0", "neck.input_proj.1", "neck.input_proj.2",
                       "neck.encoder.0", "neck.fpn_blocks.0", "neck.fpn_blocks.1", "neck.pan_blocks.0",
                       "neck.pan_blocks.1", "neck.mask_feat_head", "neck.enc_mask_output", "neck",
                       "transformer.enc_output", "transformer.mask_query_head", "transformer.query_pos_head"]
                      + [f"transformer.decoder.layers.{i}" for i in range(6)],
    "PP-YOLOE_seg-S": ["backbone", "neck", "yolo_head"],
}


def build_config(ppdet_root: Path, model: str, size, num_classes: int):
    from ppdet.core.workspace import load_config

    cfg = load_config(str(ppdet_root / CONFIGS[model]))
    h, w = size
    cfg["num_classes"] = num_classes
    cfg["eval_size"] = [h, w]
    cfg["eval_height"], cfg["eval_width"] = h, w
    cfg["TestReader"]["inputs_def"]["image_shape"] = [3, h, w]
    for op in cfg["TestReader"]["sample_transforms"]:
        if "Resize" in op:
            op["Resize"]["target_size"] = [h, w]
    cfg["use_gpu"] = False
    cfg["weights"] = None
    return cfg


def preprocess(image_path: Path, size, original=None):
    """TestReader's Decode (RGB) / Resize (interp 2, no keep_ratio) / NormalizeImage(none) / Permute.

    `original` (h, w): first shrink the photo to that size (INTER_AREA) and treat the result as the
    original image, so that the full-size masks of a small fixture stay small.
    """
    bgr = cv2.imread(str(image_path))
    if bgr is None:
        raise SystemExit(f"cannot read image {image_path}")
    if original:
        bgr = cv2.resize(bgr, (original[1], original[0]), interpolation=cv2.INTER_AREA)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    oh, ow = rgb.shape[:2]
    h, w = size
    resized = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_CUBIC).astype("float32")
    return {
        "im_shape": np.array([[h, w]], "float32"),
        "image": resized.transpose(2, 0, 1)[None].copy(),
        "scale_factor": np.array([[h / oh, w / ow]], "float32"),
    }


def run_inference(model_dir: Path, feeds):
    import paddle.inference as pi

    if (model_dir / "model.json").exists():
        config = pi.Config(str(model_dir / "model.json"), str(model_dir / "model.pdiparams"))
    else:
        config = pi.Config(str(model_dir / "model.pdmodel"), str(model_dir / "model.pdiparams"))
    config.disable_gpu()
    config.disable_mkldnn()  # Paddle 3.0's oneDNN fusion passes reject this export's PIR program
    config.set_cpu_math_library_num_threads(2)
    predictor = pi.create_predictor(config)
    for name in predictor.get_input_names():
        predictor.get_input_handle(name).copy_from_cpu(feeds[name])
    predictor.run()
    return [predictor.get_output_handle(n).copy_to_cpu() for n in predictor.get_output_names()]


def record_intermediates(model, names, feeds):
    """Dygraph outputs of the named sub-layers (lists/tuples flattened as name#i)."""
    import paddle

    layers = dict(model.named_sublayers())
    records = {}

    def hook_for(name):
        def hook(layer, inputs, output):
            flat = output if isinstance(output, (list, tuple)) else [output]
            for i, t in enumerate(flat):
                if isinstance(t, paddle.Tensor):
                    key = name if len(flat) == 1 else f"{name}#{i}"
                    records[key] = t.numpy()
        return hook

    handles = [layers[n].register_forward_post_hook(hook_for(n)) for n in names if n in layers]
    model.eval()
    with paddle.no_grad():
        model({k: paddle.to_tensor(v) for k, v in feeds.items()})
    for h in handles:
        h.remove()
    return records


def centre_mask_logits(model, weights, feeds):
    """Mask-RT-DETR: a bias for the mask-coefficient head that centres the queries' mean mask logit on 0.

    With random weights the prototypes share a large positive mean, so every mask is all ones and a
    mask comparison proves nothing. Shifting the last bias of `mask_query_head` against the
    prototypes' mean (over pixels) moves each query's mean logit by the same amount, to the median.
    """
    name = "transformer.mask_query_head.layers.2.bias"
    records = record_intermediates(model, ["neck", "transformer.mask_query_head"], feeds)
    protos = records["neck#1"][0].reshape(records["neck#1"].shape[1], -1).astype("float64")  # [P, HW]
    coeffs = records["transformer.mask_query_head"][0].astype("float64")  # [Q, P], last call: final layer
    mean = protos.mean(axis=1)
    shift = np.median(coeffs @ mean) / (mean @ mean)
    return {name: (weights[name] - shift * mean).astype("float32")}


CALIBRATE = {"Mask-RT-DETR-S": centre_mask_logits}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=sorted(CONFIGS), required=True)
    parser.add_argument("--size", type=int, nargs=2, default=[640, 640], metavar=("H", "W"))
    parser.add_argument("--num-classes", type=int, default=80)
    parser.add_argument("--variant", choices=weights_recipe.VARIANTS, default="plain")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image", type=Path, required=True)
    parser.add_argument("--original", type=int, nargs=2, metavar=("H", "W"), help="shrink the image to this size first")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--ppdet", type=Path, default=Path(os.environ.get("PPDET_ROOT", "/work/refenv/PaddleDetection")))
    parser.add_argument("--intermediates", action="store_true")
    parser.add_argument("--reuse-export", action="store_true", help="keep an existing export/ (debugging)")
    args = parser.parse_args(argv)

    import paddle
    from ppdet.engine import Trainer

    paddle.set_device("cpu")
    args.out.mkdir(parents=True, exist_ok=True)
    cfg = build_config(args.ppdet, args.model, args.size, args.num_classes)
    paddle.seed(args.seed)
    np.random.seed(args.seed)
    trainer = Trainer(cfg, mode="test")
    init = {k: v.numpy() for k, v in trainer.model.state_dict().items()}
    recipe = weights_recipe.describe(init)
    weights_recipe.save_recipe(recipe, args.out / "recipe.npz")
    feeds = preprocess(args.image, args.size, args.original)
    if args.variant == "perturbed" and args.model in CALIBRATE:
        weights = weights_recipe.materialise(recipe, args.variant, args.seed)
        trainer.model.set_state_dict({k: paddle.to_tensor(v) for k, v in weights.items()})
        recipe["overrides"] = CALIBRATE[args.model](trainer.model, weights, feeds)
        weights_recipe.save_recipe(recipe, args.out / "recipe.npz")
    # round trip through the saved file: exactly what the project's tests will rebuild
    weights = weights_recipe.materialise(weights_recipe.load_recipe(args.out / "recipe.npz"), args.variant, args.seed)
    paddle.save({k: paddle.to_tensor(v) for k, v in weights.items()}, str(args.out / "model.pdparams"))
    trainer.load_weights(str(args.out / "model.pdparams"))

    if args.intermediates:
        records = record_intermediates(trainer.model, HOOKED[args.model], feeds)
        np.savez_compressed(args.out / "intermediates.npz", **records)

    export_root = args.out / "export"
    if not args.reuse_export or not export_root.exists():
        trainer.export(str(export_root))
    (model_dir,) = [p for p in export_root.iterdir() if p.is_dir()]
    outputs = run_inference(model_dir, feeds)
    bbox, bbox_num, mask = outputs[:3]
    np.savez_compressed(args.out / "io.npz", **feeds, bbox=bbox, bbox_num=bbox_num, mask=mask)
    meta = {
        "model": args.model, "config": CONFIGS[args.model], "size": args.size, "num_classes": args.num_classes,
        "variant": args.variant, "seed": args.seed, "image": args.image.name, "original": args.original,
        "paddle": paddle.__version__,
        "ppdet_commit": os.popen(f"git -C {args.ppdet} rev-parse HEAD").read().strip(),
        "export_files": sorted(p.name for p in model_dir.iterdir()),
        "outputs": [list(o.shape) for o in outputs],
    }
    (args.out / "meta.json").write_text(json.dumps(meta, indent=1))
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
