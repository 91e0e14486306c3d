"""What PaddleX 3.0.0's InstanceSegResult writes with save_to_json (run in PaddleX's own venv).

    /work/refenv/paddlex/bin/python tools/paddlex_reference/result_json.py tests/data/paddlex_result

Writes <dir>/cases.npz (per case an input_path, a page_index, boxes as JSON and the box-cropped uint8
masks; scores and coordinates are float32 values as a predictor gives them), builds PaddleX's own result object
for each case the way its predictor does ({input_path, page_index, input_img, boxes, masks}), and
saves with PaddleX's save_to_json both into the directory (<stem>[_<page>]_res.json) and to an
explicit `<name>.json` path, under <dir>/paddlex/. The project never imports this file.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from paddlex.inference.models.instance_segmentation.result import InstanceSegResult


def make_cases(folder: Path) -> None:
    rng = np.random.default_rng(0)

    def box(cls_id, label):
        x1, y1 = rng.uniform(0, 50, 2).astype(np.float32)
        x2, y2 = (np.array([x1, y1], np.float32) + rng.uniform(3, 9, 2).astype(np.float32))
        return {"cls_id": cls_id, "label": label, "score": float(np.float32(rng.uniform(0.5, 1))),
                "coordinate": [float(x1), float(y1), float(x2), float(y2)]}

    cases = [
        {"input_path": "/data/pics/cat.png", "page_index": None, "boxes": [box(16, "dog"), box(3, "狗")]},
        {"input_path": "/data/docs/report.pdf", "page_index": 1, "boxes": [box(0, "person")]},
        {"input_path": "/data/pics/empty.jpg", "page_index": None, "boxes": []},
    ]
    arrays = {}
    for index, case in enumerate(cases):
        for i, b in enumerate(case["boxes"]):
            x1, y1, x2, y2 = (round(v) for v in b["coordinate"])
            arrays[f"case{index}_mask{i}"] = (rng.random((y2 - y1, x2 - x1)) > 0.5).astype(np.uint8)
    np.savez_compressed(folder / "cases.npz", cases_json=np.array(json.dumps(cases, ensure_ascii=False)), **arrays)


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    make_cases(folder)
    out = folder / "paddlex"
    out.mkdir(exist_ok=True)
    with np.load(folder / "cases.npz") as data:
        cases = json.loads(str(data["cases_json"]))
        for index, case in enumerate(cases):
            masks = [data[f"case{index}_mask{i}"] for i in range(len(case["boxes"]))]
            result = InstanceSegResult({
                "input_path": case["input_path"], "page_index": case["page_index"],
                "input_img": np.zeros((4, 4, 3), np.uint8), "boxes": case["boxes"], "masks": masks,
            })
            result.save_to_json(str(out))
            result.save_to_json(str(out / f"explicit_{index}.json"))
            (out / f"json_property_{index}.json").write_text(json.dumps(result.json, indent=4, ensure_ascii=False),
                                                             encoding="utf-8")
    print(sorted(p.name for p in out.iterdir()))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
