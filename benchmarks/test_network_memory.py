"""Peak memory of one 1920x1080 prediction: reference graph vs edge graph, for both networks.

Each prediction runs in a fresh child process (Paddle Inference, 640x640 input, seeded random
weights), and the child's peak resident memory (VmHWM) is read back, together with the peak
of a child that only loads the model, so the prediction's own share can be told apart.
The reference graphs output full-size masks (Mask-RT-DETR: 100 x H x W int32); the edge graphs
leave them at 160x160 and the runtime resizes only kept instances inside their boxes.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHILD = r"""
import json, sys, time
import cv2
from edge.models import open_model_dir
from edge.predictor import LocalPredictor
model_dir, image_path, predict = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
predictor = LocalPredictor(open_model_dir(model_dir), "paddle")
image = cv2.resize(cv2.imread(image_path), (1920, 1080))
seconds = None
if predict:
    start = time.perf_counter(); detections = predictor(image, 0.5); seconds = time.perf_counter() - start
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork + exec, so a child of a large pytest
# process reported the parent's peak (3575 MB for every model in one `make bench` run)
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"peak_mb": hwm / 1024, "seconds": seconds}))
"""


def measure(model_dir: Path, predict: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(model_dir), str(ROOT / "samples/coco/000000014439.jpg"),
                          "1" if predict else "0"], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("network", ["PP-YOLOE_seg-S", "Mask-RT-DETR-S"])
def test_peak_memory_reference_vs_edge(network, long_benchmark, benchmark, tmp_path):
    import export  # noqa: F401
    from export.networks.mask_rtdetr import export_mask_rtdetr
    from export.networks.ppyoloe_seg import export_ppyoloe_seg

    make = export_ppyoloe_seg if network == "PP-YOLOE_seg-S" else export_mask_rtdetr
    figures = {}
    for graph in ("reference", "edge"):
        import paddle

        paddle.seed(0)
        model_dir = make(tmp_path / graph, graph=graph)
        loaded, predicted = measure(model_dir, False), measure(model_dir, True)
        figures[graph] = {"load_peak_mb": round(loaded["peak_mb"]), "predict_peak_mb": round(predicted["peak_mb"]),
                          "prediction_extra_mb": round(predicted["peak_mb"] - loaded["peak_mb"]),
                          "seconds": round(predicted["seconds"], 2)}
    figures["reference_over_edge_peak"] = round(figures["reference"]["predict_peak_mb"] / figures["edge"]["predict_peak_mb"], 2)
    benchmark.extra_info.update(figures)
    print(f"\n{network} at 1920x1080 (Paddle Inference, 640x640): {json.dumps(figures)}")
    benchmark.pedantic(lambda: None, rounds=1)
