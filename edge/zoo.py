"""The 15 models of PaddleX's instance-segmentation pipeline (docs/SPEC.md §1).

Latencies are the published ones (ms; GPU = Tesla T4, CPU = Xeon Gold 5117 8 threads, FP32;
None where PaddleX publishes none). Only the two edge models are exported to Paddle Lite; the
others are served (`edge serve`).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from .errors import ModelError

INFERENCE_URL = "https://paddle-model-ecology.bj.bcebos.com/paddlex/official_inference_model/paddle3.0rc0/{name}_infer.tar"
PRETRAINED_URL = "https://paddle-model-ecology.bj.bcebos.com/paddlex/official_pretrained_model/{name}_pretrained.pdparams"

COCO_LABELS: List[str] = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush",
]


@dataclass(frozen=True)
class ZooModel:
    name: str
    family: str
    mask_ap: float
    size_mb: float
    gpu_ms: Optional[Tuple[float, float]]  # (normal, high-performance)
    cpu_ms: Optional[Tuple[float, float]]
    edge: bool = False
    input_size: Tuple[int, int] = (640, 640)  # [h, w]
    # Paddle Inference on CPU. PaddleX 3.0.0 runs every model with MKLDNN off (run_mode "paddle"); it is on
    # where it is faster and keeps PaddleX's results within tolerance (benchmarks/test_server_families.py,
    # measured: Mask-RT-DETR-L 0.58x, -X 0.49x, -H 0.24x the time; same rows as PaddleX, -H's coordinates
    # within 3e-5 px, which can flip a crop's rounding by one pixel). MaskRCNN and Cascade fail to run with it
    # on the new IR, Mask-RT-DETR-M and SOLOv2 fail to load (tools/server_families/README.md). The old IR
    # (`new_ir=False`, with or without MKLDNN) is no way out for the RCNN families: MaskRCNN-FPN's rows move
    # (scores 4e-4, coordinates 0.24 px, masks 91 % equal) and with MKLDNN, like Cascade's either way, its
    # masks come out in other shapes. Their speed comes from cutting the programs' own post-processing
    # instead (edge/backends/program_cut.py: SOLOv2's per-candidate head, the RCNN full-image paste).
    # SOLOv2's cut program (legacy) does load on the old IR with MKLDNN and ran 2.3x faster there, within
    # tolerance (scores 5e-7, masks 99.998 %; README): not chosen yet (PIR programs need the new IR).
    mkldnn: bool = False
    new_ir: bool = True  # False: the old IR, as PaddleX's NEWIR_BLOCKLIST has it
    batch_one_only: bool = False

    @property
    def inference_url(self) -> str:
        return INFERENCE_URL.format(name=self.name)

    @property
    def pretrained_url(self) -> str:
        return PRETRAINED_URL.format(name=self.name)

    @property
    def labels(self) -> List[str]:
        return list(COCO_LABELS)


_CMR, _MRD, _MR = "Cascade Mask R-CNN", "Mask-RT-DETR", "Mask R-CNN"
MODELS: Dict[str, ZooModel] = {m.name: m for m in [
    ZooModel("Cascade-MaskRCNN-ResNet50-FPN", _CMR, 36.3, 254.8, (141.69, 141.69), None, batch_one_only=True),
    ZooModel("Cascade-MaskRCNN-ResNet50-vd-SSLDv2-FPN", _CMR, 39.1, 254.7, (147.62, 147.62), None, batch_one_only=True),
    ZooModel("Mask-RT-DETR-H", _MRD, 50.6, 449.9, (172.36, 172.36), (1615.75, 1615.75), mkldnn=True),
    ZooModel("Mask-RT-DETR-L", _MRD, 45.7, 113.6, (88.18, 88.18), (1090.84, 1090.84), mkldnn=True),
    ZooModel("Mask-RT-DETR-M", _MRD, 42.7, 66.6, (78.69, 78.69), None),
    ZooModel("Mask-RT-DETR-S", _MRD, 41.0, 51.8, (33.50, 33.50), None, edge=True),
    ZooModel("Mask-RT-DETR-X", _MRD, 47.5, 237.5, (114.16, 114.16), (1240.92, 1240.92), mkldnn=True),
    ZooModel("MaskRCNN-ResNet50-FPN", _MR, 35.6, 157.5, (118.30, 118.30), None),
    ZooModel("MaskRCNN-ResNet50-vd-FPN", _MR, 36.4, 157.5, (118.34, 118.34), None),
    ZooModel("MaskRCNN-ResNet50", _MR, 32.8, 128.7, (228.83, 228.83), None),
    ZooModel("MaskRCNN-ResNet101-FPN", _MR, 36.6, 225.4, (148.14, 148.14), None),
    ZooModel("MaskRCNN-ResNet101-vd-FPN", _MR, 38.1, 225.1, (151.12, 151.12), None),
    ZooModel("MaskRCNN-ResNeXt101-vd-FPN", _MR, 39.5, 370.0, (237.55, 237.55), None),
    ZooModel("PP-YOLOE_seg-S", "PP-YOLOE-seg", 32.5, 31.5, None, None, edge=True, batch_one_only=True, new_ir=False),
    ZooModel("SOLOv2", "SOLOv2", 35.5, 179.1, None, None, batch_one_only=True),
]}
EDGE_MODELS = [name for name, m in MODELS.items() if m.edge]
DEMO_MODEL = "PP-YOLOE_seg-demo"  # the project's own offline demo model (not one of PaddleX's 15)


def get_model(name: str) -> ZooModel:
    """Look a model up by name; an unknown name gets the closest names as a suggestion."""
    try:
        return MODELS[name]
    except KeyError:
        close = difflib.get_close_matches(name, MODELS, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ModelError(
            f"unknown model {name!r}.{hint} `edge models` lists the {len(MODELS)} models; "
            "for your own model pass a directory (inference directory or bundle)."
        ) from None
