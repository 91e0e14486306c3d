"""`POST /instance-segmentation` and `GET /health` against PaddleX's contract, on a real server."""
from __future__ import annotations

import base64
import io

import cv2
import numpy as np
import pycocotools.mask as mask_util
import requests
from PIL import Image

from edge.pipeline import create_pipeline
from edge.postprocess import crop_region

from serving_helpers import assert_envelope, b64, model_overrides, start_server

INFER = "/instance-segmentation"


def post(server, payload, **kwargs) -> requests.Response:
    return requests.post(server.url + INFER, json=payload, timeout=60, **kwargs)


def test_health(server):
    response = requests.get(server.url + "/health", timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert_envelope(body, 200)
    assert set(body) == {"logId", "errorCode", "errorMsg"} and body["errorMsg"] == "Healthy"


def test_every_field_matches_the_local_pipeline(server, standin_edge, sample_images):
    local = create_pipeline(config=model_overrides(standin_edge.inference_dir))
    checked = 0
    for path in sample_images[:3]:
        response = post(server, {"image": b64(path.read_bytes()), "threshold": 0.3})
        assert response.status_code == 200
        body = response.json()
        assert_envelope(body, 200)
        assert body["errorMsg"] == "Success" and set(body) == {"logId", "errorCode", "errorMsg", "result"}
        assert set(body["result"]) == {"instances", "image"}  # the server visualises by default
        [expected] = list(local.predict(str(path), threshold=0.3))
        instances = body["result"]["instances"]
        assert len(instances) == len(expected["boxes"]) > 0
        for item, box, mask in zip(instances, expected["boxes"], expected["masks"]):
            assert set(item) == {"bbox", "categoryId", "categoryName", "score", "mask"}
            assert item["bbox"] == box["coordinate"] and item["score"] == box["score"]
            assert item["categoryId"] == box["cls_id"] and item["categoryName"] == box["label"]
            assert isinstance(item["categoryId"], int) and isinstance(item["mask"]["rleResult"], str)
            x1, y1, x2, y2 = crop_region(item["bbox"])
            assert item["mask"]["size"] == [y2 - y1, x2 - x1] == list(mask.shape)
            rle = {"counts": item["mask"]["rleResult"].encode("utf-8"), "size": item["mask"]["size"]}
            np.testing.assert_array_equal(mask_util.decode(rle), mask)  # pycocotools, not our codec
            checked += 1
        picture = Image.open(io.BytesIO(base64.b64decode(body["result"]["image"])))
        assert picture.format == "JPEG" and picture.size == Image.open(path).size
        drawn = cv2.cvtColor(np.asarray(picture), cv2.COLOR_RGB2BGR).astype(np.int16)
        assert np.abs(drawn - cv2.imread(str(path)).astype(np.int16)).mean() > 1  # masks were drawn
    assert checked > 10


def test_rle_is_pycocotools_on_the_fortran_ordered_crop(server, sample_images):
    body = post(server, {"image": b64(sample_images[3].read_bytes()), "threshold": 0.3}).json()
    item = body["result"]["instances"][0]
    mask = mask_util.decode({"counts": item["mask"]["rleResult"].encode(), "size": item["mask"]["size"]})
    encoded = mask_util.encode(np.asfortranarray(mask[:, :, None]))[0]["counts"].decode("utf-8")
    assert encoded == item["mask"]["rleResult"] and mask.any() and not mask.all()


def test_visualize_flag_and_default_threshold(server, sample_images):
    image = b64(sample_images[0].read_bytes())
    body = post(server, {"image": image, "visualize": False}).json()
    assert_envelope(body, 200)
    assert set(body["result"]) == {"instances"}  # `image` left out, not null
    assert all(item["score"] > 0.5 for item in body["result"]["instances"])  # threshold null -> 0.5
    low = post(server, {"image": image, "threshold": None, "visualize": None}).json()
    assert "image" in low["result"] and low["result"]["instances"] == body["result"]["instances"]
    scores = sorted(item["score"] for item in body["result"]["instances"])
    cut = (scores[len(scores) // 2 - 1] + scores[len(scores) // 2]) / 2  # a threshold that splits them
    fewer = post(server, {"image": image, "threshold": cut, "visualize": False}).json()["result"]["instances"]
    assert 0 < len(fewer) == sum(s > cut for s in scores) < len(scores)


def test_server_without_default_visualisation(standin_edge, sample_images):
    from edge.serve.app import create_app
    from edge.serve.limits import ServeLimits
    from edge.serve.runner import BackgroundServer, pipeline_factory

    app = create_app(pipeline_factory("instance_segmentation", model_overrides(standin_edge.inference_dir)),
                     ServeLimits(), visualize=False)
    with BackgroundServer(app) as live:
        image = b64(sample_images[0].read_bytes())
        assert "image" not in post(live, {"image": image}).json()["result"]
        assert "image" in post(live, {"image": image, "visualize": True}).json()["result"]


def test_url_input(server, image_host, sample_images):
    base, _ = image_host
    by_url = post(server, {"image": f"{base}/{sample_images[1].name}", "visualize": False}).json()
    by_b64 = post(server, {"image": b64(sample_images[1].read_bytes()), "visualize": False}).json()
    assert_envelope(by_url, 200)
    assert by_url["result"] == by_b64["result"]


def test_bundle_is_served_by_the_lite_backend(standin_edge, sample_images):
    local = create_pipeline(config=model_overrides(standin_edge.bundle_dir))
    live = start_server(standin_edge.bundle_dir)
    try:
        body = post(live, {"image": b64(sample_images[2].read_bytes()), "threshold": 0.3}).json()
    finally:
        live.stop()
    [expected] = list(local.predict(str(sample_images[2]), threshold=0.3))
    assert expected.computed_by == "lite"
    assert [i["bbox"] for i in body["result"]["instances"]] == [b["coordinate"] for b in expected["boxes"]]


def test_openapi_schema_and_docs(server):
    schema = requests.get(server.url + "/openapi.json", timeout=10).json()
    operation = schema["paths"]["/instance-segmentation"]["post"]
    assert operation["operationId"] == "infer"
    request_ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    assert set(schema["components"]["schemas"][request_ref]["properties"]) == {"image", "threshold", "visualize"}
    assert schema["components"]["schemas"][request_ref]["required"] == ["image"]
    assert "get" in schema["paths"]["/health"]
    docs = requests.get(server.url + "/docs", timeout=10)
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_a_server_only_zoo_model_is_computed_by_the_server_itself(standin_edge, sample_images, tmp_path,
                                                                   monkeypatch):
    """`--model Mask-RT-DETR-L`: the official inference directory from the cache (a stand-in copy
    here), computed locally even when the YAML names a fallback server (a server never forwards)."""
    import shutil

    from edge.serve.app import create_app
    from edge.serve.runner import BackgroundServer, pipeline_factory
    from serving_helpers import closed_port

    monkeypatch.setenv("EDGE_CACHE", str(tmp_path))
    shutil.copytree(standin_edge.inference_dir, tmp_path / "official" / "Mask-RT-DETR-L_infer")
    overrides = {"SubModules": {"InstanceSegmentation": {"model_name": "Mask-RT-DETR-L", "model_dir": None}},
                 "Serving": {"url": f"http://127.0.0.1:{closed_port()}", "fallback": "on_error"}}
    make_pipeline = pipeline_factory("instance_segmentation", overrides)
    assert make_pipeline().predictor.name == "paddle"
    with BackgroundServer(create_app(make_pipeline)) as live:
        body = post(live, {"image": b64(sample_images[0].read_bytes()), "visualize": False}).json()
    assert_envelope(body, 200)
    assert body["result"]["instances"]


def test_several_workers_answer_concurrent_requests_alike(standin_edge, sample_images):
    import concurrent.futures

    live = start_server(standin_edge.inference_dir, workers=2, max_queue=8)
    try:
        images = [b64(p.read_bytes()) for p in sample_images[:3]] * 3
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda img: post(live, {"image": img, "visualize": False}).json(), images))
    finally:
        live.stop()
    assert all(a["errorCode"] == 0 for a in answers)
    for i in range(3):  # the same image gives the same answer whichever worker computed it
        assert answers[i]["result"] == answers[i + 3]["result"] == answers[i + 6]["result"]
    assert len({a["logId"] for a in answers}) == len(answers)
