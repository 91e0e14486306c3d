"""Export one model per server-only family with PaddleDetection's own exporter and seeded weights.

Runs in PaddleDetection's venv (NOT the project's): see tools/server_families/README.md.

    FLAGS_enable_pir_api=0 python export_families.py --ppdet DIR --out OUT/legacy   # inference.pdmodel
    FLAGS_enable_pir_api=1 python export_families.py --ppdet DIR --out OUT/pir      # inference.json

Weights: PaddleDetection's own initialisation under `paddle.seed(SEED)`, with the RCNN / SOLOv2
heads' last layers scaled (see `_scale_heads`) so that the random network gives spread-out scores. Input sizes are reduced (RCNN / SOLOv2: 256 x 416 keep-ratio,
Mask-RT-DETR: 320 x 320) to keep the run short.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


FAMILIES = {
    "MaskRCNN-ResNet50-FPN": ("configs/mask_rcnn/mask_rcnn_r50_fpn_1x_coco.yml", "rcnn"),
    "MaskRCNN-ResNet50": ("configs/mask_rcnn/mask_rcnn_r50_1x_coco.yml", "rcnn"),
    "Cascade-MaskRCNN-ResNet50-FPN": ("configs/cascade_rcnn/cascade_mask_rcnn_r50_fpn_1x_coco.yml", "rcnn"),
    "SOLOv2": ("configs/solov2/solov2_r50_fpn_1x_coco.yml", "rcnn"),
    "Mask-RT-DETR-L": ("configs/mask_rtdetr/mask_rtdetr_hgnetv2_l_6x_coco.yml", "detr"),
    "Mask-RT-DETR-M": ("configs/mask_rtdetr/mask_rtdetr_hgnetv2_m_6x_coco.yml", "detr"),
    "Mask-RT-DETR-X": ("configs/mask_rtdetr/mask_rtdetr_hgnetv2_x_6x_coco.yml", "detr"),
    "Mask-RT-DETR-H": ("configs/mask_rtdetr/mask_rtdetr_hgnetv2_h_6x_coco.yml", "detr"),
}
SEED = 12
HEAD_LAYERS = ("bbox_score", "bbox_delta", "mask_fcn_logits", "solo_kernel")
SOLO_CATE_BIAS = -1.0  # SOLOv2's category head (GroupNorm before it) starts at sigmoid(-4.6): nothing over 0.1
HEAD_GAIN = 0.01
RCNN_SIZE = [256, 416]
DETR_SIZE = 320


def _shrink_inputs(cfg, kind: str) -> None:
    for op in cfg["TestReader"]["sample_transforms"]:
        if "Resize" in op:
            op["Resize"]["target_size"] = RCNN_SIZE if kind == "rcnn" else [DETR_SIZE, DETR_SIZE]
    if kind == "detr":
        cfg["TestReader"]["inputs_def"]["image_shape"] = [3, DETR_SIZE, DETR_SIZE]
        cfg["eval_size"] = [DETR_SIZE, DETR_SIZE]


def _scale_heads(model, kind: str) -> None:
    """Scale the last layers of the RCNN / SOLOv2 heads down.

    With PaddleDetection's initialisation the ResNet's frozen BatchNorm (mean 0, variance 1) lets
    activations grow through the network, so every class score saturates at 1.0 and box deltas
    explode; scaled by HEAD_GAIN the scores spread out (0.05 .. 0.3) and boxes stay in the image.
    Mask-RT-DETR (LayerNorm in its transformer) keeps its initialisation.
    """
    if kind != "rcnn":
        return
    state = model.state_dict()
    for name in sorted(state):
        if any(key in name for key in HEAD_LAYERS) and state[name].ndim >= 2:
            state[name].set_value(state[name] * HEAD_GAIN)
        elif name.endswith("solo_cate.bias"):
            state[name].set_value(state[name] * 0 + SOLO_CATE_BIAS)


def export(ppdet: Path, name: str, out: Path) -> None:
    sys.path.insert(0, str(ppdet))
    import paddle
    from ppdet.core.workspace import load_config
    from ppdet.engine import Trainer

    config, kind = FAMILIES[name]
    paddle.set_device("cpu")
    paddle.seed(SEED)
    cfg = load_config(str(ppdet / config))
    cfg.use_gpu = False
    cfg.weights = None
    _shrink_inputs(cfg, kind)
    trainer = Trainer(cfg, mode="test")
    _scale_heads(trainer.model, kind)
    target = out / name
    trainer.export(str(out))
    # PaddleDetection writes <out>/<config stem>; rename to the PaddleX model name
    exported = out / Path(config).stem
    if target.exists():
        import shutil
        shutil.rmtree(target)
    exported.rename(target)
    for f in list(target.iterdir()):  # PaddleX 3 archives name the files inference.*
        if f.name.startswith("model."):
            f.rename(target / ("inference." + f.name[len("model."):]))
    yml = target / "infer_cfg.yml"
    if yml.exists():  # PaddleX reads inference.yml; older PaddleDetection wrote infer_cfg.yml
        yml.rename(target / "inference.yml")
    text = (target / "inference.yml").read_text()
    if "model_name" not in text:  # PaddleX's predictor picks its per-model rules by Global.model_name
        text = f"Global:\n  model_name: {name}\n" + text
    (target / "inference.yml").write_text(text)
    for f in sorted(target.iterdir()):
        print(f"{name}: {f.name} {f.stat().st_size}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ppdet", type=Path, required=True, help="PaddleDetection source checkout")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--family", action="append", choices=sorted(FAMILIES))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.family or FAMILIES:
        export(args.ppdet.resolve(), name, args.out.resolve())


if __name__ == "__main__":
    main()
