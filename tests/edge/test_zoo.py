"""The model zoo registry: the 15 models of docs/SPEC.md §1 and their facts."""
import pytest

from edge.errors import ModelError
from edge.zoo import COCO_LABELS, EDGE_MODELS, MODELS, get_model


def test_fifteen_models_two_of_them_edge():
    assert len(MODELS) == 15
    assert sorted(EDGE_MODELS) == ["Mask-RT-DETR-S", "PP-YOLOE_seg-S"]


def test_published_facts():
    assert get_model("Mask-RT-DETR-H").mask_ap == 50.6 and get_model("Mask-RT-DETR-H").cpu_ms == (1615.75, 1615.75)
    assert get_model("PP-YOLOE_seg-S").size_mb == 31.5 and get_model("PP-YOLOE_seg-S").gpu_ms is None
    assert get_model("SOLOv2").family == "SOLOv2"
    assert all(m.input_size == (640, 640) for m in MODELS.values())
    assert len(COCO_LABELS) == 80 and COCO_LABELS[0] == "person" and COCO_LABELS[-1] == "toothbrush"


def test_official_urls():
    m = get_model("MaskRCNN-ResNet50-FPN")
    assert m.inference_url == ("https://paddle-model-ecology.bj.bcebos.com/paddlex/official_inference_model/"
                               "paddle3.0rc0/MaskRCNN-ResNet50-FPN_infer.tar")
    assert m.pretrained_url.endswith("/official_pretrained_model/MaskRCNN-ResNet50-FPN_pretrained.pdparams")


def test_paddlex_runtime_quirks_are_recorded():
    assert not get_model("Mask-RT-DETR-S").mkldnn and not get_model("SOLOv2").mkldnn
    # PaddleX's NEWIR_BLOCKLIST: PP-YOLOE_seg-S runs on the old IR, everything else on PIR
    assert not get_model("PP-YOLOE_seg-S").new_ir and get_model("MaskRCNN-ResNet50-FPN").new_ir
    assert get_model("PP-YOLOE_seg-S").batch_one_only and get_model("Cascade-MaskRCNN-ResNet50-FPN").batch_one_only


def test_unknown_name_suggests():
    with pytest.raises(ModelError, match="Did you mean PP-YOLOE_seg-S"):
        get_model("PP-YOLOE-seg-S")
