"""PaddleX's result API: print, json, save_to_json, img, save_to_img and their path rules."""
import json
from pathlib import Path

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
    saved = json.loads((tmp_path / "cat_res.json").read_text())
    assert list(saved) == ["input_path", "page_index", "boxes", "masks"]  # the inner dict: no "res" wrapper
    assert saved["boxes"][0]["label"] == "dog" and saved == result.json["res"]
    assert result.save_to_json(str(tmp_path / "x" / "named.json")).exists()


PADDLEX_RESULTS = Path(__file__).resolve().parents[1] / "data" / "paddlex_result"


def paddlex_cases():
    """The inputs tools/paddlex_reference/result_json.py gave PaddleX 3.0.0's own InstanceSegResult."""
    with np.load(PADDLEX_RESULTS / "cases.npz") as data:
        cases = json.loads(str(data["cases_json"]))
        return [
            (index, InstanceSegResult(case["input_path"], case["page_index"], case["boxes"],
                                      [data[f"case{index}_mask{i}"] for i in range(len(case["boxes"]))]))
            for index, case in enumerate(cases)
        ]


@pytest.mark.parametrize("index, res", paddlex_cases(), ids=["image", "pdf_page", "no_instances"])
def test_save_to_json_writes_the_bytes_paddlex_writes(index, res, tmp_path):
    """Byte for byte what PaddleX 3.0.0's save_to_json wrote for the same result (directory and .json path),
    and the same `json` property."""
    written = res.save_to_json(str(tmp_path))
    theirs = PADDLEX_RESULTS / "paddlex" / written.name
    assert theirs.is_file(), f"PaddleX named its file differently: {sorted(p.name for p in theirs.parent.iterdir())}"
    assert written.read_bytes() == theirs.read_bytes()
    explicit = res.save_to_json(str(tmp_path / f"explicit_{index}.json"))
    assert explicit.read_bytes() == (PADDLEX_RESULTS / "paddlex" / f"explicit_{index}.json").read_bytes()
    property_file = PADDLEX_RESULTS / "paddlex" / f"json_property_{index}.json"
    assert res.json == json.loads(property_file.read_text(encoding="utf-8"))


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
