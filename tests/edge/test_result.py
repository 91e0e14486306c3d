"""PaddleX's result API: print, json, save_to_json, img, save_to_img and their path rules."""
import json

import numpy as np
import pytest
from PIL import Image

from edge.result import InstanceSegResult


@pytest.fixture()
def result():
    image = np.zeros((40, 60, 3), np.uint8)
    boxes = [{"cls_id": 1, "label": "dog", "score": 0.87, "coordinate": [2.0, 3.0, 12.0, 9.0]}]
    masks = [np.ones((6, 10), np.uint8)]
    return InstanceSegResult("/data/pics/cat.png", None, boxes, masks, image=image, computed_by="lite")


def test_print_hides_masks(result, capsys):
    result.print()
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"res": {"input_path": "/data/pics/cat.png", "page_index": None, "boxes": result["boxes"], "masks": "..."}}
    result.print(format_json=False)
    assert "'masks': '...'" in capsys.readouterr().out
    assert "'masks': '...'" in str(result)


def test_print_indent_and_ascii(capsys):
    res = InstanceSegResult("狗.png", None, [], [])
    res.print(indent=2, ensure_ascii=True)
    out = capsys.readouterr().out
    assert "\\u72d7" in out and '\n  "res"' in out


def test_json_has_masks_as_nested_lists(result):
    data = result.json
    assert data["res"]["masks"] == [np.ones((6, 10), int).tolist()]
    json.dumps(data)  # serialisable


def test_save_to_json_directory_and_file(result, tmp_path):
    assert result.save_to_json(str(tmp_path)) == tmp_path / "cat_res.json"
    assert json.loads((tmp_path / "cat_res.json").read_text())["res"]["boxes"][0]["label"] == "dog"
    assert result.save_to_json(str(tmp_path / "x" / "named.json")).exists()


def test_save_to_img_keeps_the_input_suffix(result, tmp_path):
    assert result.save_to_img(str(tmp_path)) == tmp_path / "cat_res.png"
    assert Image.open(tmp_path / "cat_res.png").size == (60, 40)
    assert result.save_to_img(str(tmp_path / "pic.jpg")).suffix == ".jpg"


def test_img_is_a_pil_image_with_the_mask_drawn(result):
    picture = result.img["res"]
    assert isinstance(picture, Image.Image) and picture.mode == "RGB"
    pixels = np.asarray(picture)
    assert pixels[6, 6].any() and not pixels[30, 50].any()


def test_numpy_and_pdf_basenames():
    assert InstanceSegResult(None, None, [], []).basename == "image"
    assert InstanceSegResult("doc.pdf", 3, [], []).basename == "doc_3"
