"""create_pipeline / predict: PaddleX's API on a real model, inputs of every kind, errors."""
import json

import cv2
import pytest

from edge.errors import ConfigError, InputError, ManifestError, ModelError
from edge.pipeline import create_pipeline


def pipeline_for(model_dir, **module):
    return create_pipeline(config={"SubModules": {"InstanceSegmentation": {"model_dir": str(model_dir), **module}}})


def test_predict_is_a_generator_of_paddlex_results(standin_edge, sample_images):
    results = pipeline_for(standin_edge.bundle_dir).predict(str(sample_images[0]))
    assert hasattr(results, "__next__")
    (res,) = list(results)
    assert set(res) == {"input_path", "page_index", "boxes", "masks"}
    assert res["input_path"] == str(sample_images[0]) and res["page_index"] is None
    assert len(res["boxes"]) == len(res["masks"]) > 0
    for box, mask in zip(res["boxes"], res["masks"]):
        assert set(box) == {"cls_id", "label", "score", "coordinate"}
        assert box["score"] > 0.5 and box["label"] == f"class{box['cls_id']}"
        x1, y1, x2, y2 = (round(v) for v in box["coordinate"])
        assert mask.shape == (y2 - y1, x2 - x1)


def test_threshold_precedence(standin_edge, photo):
    default = list(pipeline_for(standin_edge.bundle_dir).predict(photo))[0]  # yml draw_threshold 0.5
    low = list(pipeline_for(standin_edge.bundle_dir).predict(photo, threshold=0.2))[0]
    config_high = list(pipeline_for(standin_edge.bundle_dir, threshold=0.6).predict(photo))[0]
    assert len(low["boxes"]) >= len(default["boxes"]) >= len(config_high["boxes"])
    assert all(b["score"] > 0.6 for b in config_high["boxes"])
    assert all(b["score"] > 0.2 for b in low["boxes"])


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, "0.5", True])
def test_threshold_outside_open_unit_interval(standin_edge, photo, bad):
    with pytest.raises(ConfigError, match="threshold"):
        list(pipeline_for(standin_edge.bundle_dir).predict(photo, threshold=bad))


def test_numpy_input_is_bgr(standin_edge, photo):
    pipe = pipeline_for(standin_edge.inference_dir)
    from_array = list(pipe.predict(photo))[0]
    from_rgb = list(pipe.predict(cv2.cvtColor(photo, cv2.COLOR_BGR2RGB)))[0]
    assert from_array["input_path"] is None
    assert [b["score"] for b in from_array["boxes"]] != [b["score"] for b in from_rgb["boxes"]]


def test_directory_and_list_continue_past_a_bad_item(standin_edge, sample_images, tmp_path, caplog):
    for p in sample_images[:2]:
        (tmp_path / p.name).write_bytes(p.read_bytes())
    (tmp_path / "broken.jpg").write_bytes(sample_images[2].read_bytes()[:500])
    pipe = pipeline_for(standin_edge.bundle_dir)
    results = list(pipe.predict(str(tmp_path)))
    assert len(results) == 2 and "broken.jpg" in caplog.text
    with pytest.raises(InputError, match="broken.jpg"):
        list(pipe.predict(str(tmp_path), strict=True))
    mixed = list(pipe.predict([str(sample_images[0]), str(tmp_path / "missing.jpg"), str(sample_images[1])]))
    assert [r["input_path"] for r in mixed] == [str(sample_images[0]), str(sample_images[1])]


def test_single_bad_input_raises(standin_edge, tmp_path):
    pipe = pipeline_for(standin_edge.bundle_dir)
    with pytest.raises(InputError, match="nope.jpg"):
        list(pipe.predict(str(tmp_path / "nope.jpg")))
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(InputError, match="notes.jpg"):
        list(pipe.predict(str(tmp_path / "notes.jpg")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty"):
        list(pipe.predict(str(tmp_path / "empty")))


@pytest.mark.parametrize("empty", ["", "   "])
def test_empty_string_is_an_input_error_not_the_current_directory(standin_edge, empty, tmp_path, monkeypatch, photo):
    import cv2

    monkeypatch.chdir(tmp_path)
    cv2.imwrite(str(tmp_path / "here.png"), photo)  # what "" would read if it meant "."
    with pytest.raises(InputError, match="empty string"):
        list(pipeline_for(standin_edge.bundle_dir).predict(empty))


def test_each_bad_item_is_reported_once_and_briefly(standin_edge, sample_images, tmp_path, caplog, photo):
    (tmp_path / "a_good.jpg").write_bytes(sample_images[0].read_bytes())
    (tmp_path / "b_broken.jpg").write_bytes(sample_images[1].read_bytes()[:500])
    pipe = pipeline_for(standin_edge.bundle_dir)
    with caplog.at_level("WARNING"):
        assert len(list(pipe.predict(str(tmp_path)))) == 1
    assert caplog.text.count("b_broken.jpg") == 1, caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        results = list(pipe.predict([photo, [photo, photo]]))  # a nested list is refused, the rest goes on
    assert len(results) == 1
    assert caplog.text.count("nested lists are not supported") == 1, caplog.text
    assert len(caplog.text) < 1000 and "array([" not in caplog.text, caplog.text[:2000]


def test_pdf_gives_one_result_per_page(standin_edge, sample_images, tmp_path):
    from PIL import Image

    pages = [Image.open(p).convert("RGB") for p in sample_images[:2]]
    pdf = tmp_path / "doc.pdf"
    pages[0].save(pdf, save_all=True, append_images=pages[1:])
    results = list(pipeline_for(standin_edge.bundle_dir).predict(str(pdf)))
    assert [r["page_index"] for r in results] == [0, 1]
    results[1].save_to_json(str(tmp_path / "out"))
    assert (tmp_path / "out" / "doc_1_res.json").exists()


def test_unknown_model_name_suggests_close_names():
    with pytest.raises(ModelError, match="Mask-RT-DETR-S"):
        create_pipeline(config={"SubModules": {"InstanceSegmentation": {"model_name": "Mask-RTDETR-S"}}})


def test_missing_model_dir():
    with pytest.raises(ModelError, match="does not exist"):
        pipeline_for("/nonexistent/model")


def test_wrong_model_directory(tmp_path):
    (tmp_path / "random.txt").write_text("x")
    with pytest.raises(ModelError, match="neither a bundle"):
        pipeline_for(tmp_path)


def test_tampered_bundle_is_refused(standin_edge, tmp_path):
    import shutil

    copy = tmp_path / "bundle"
    shutil.copytree(standin_edge.bundle_dir, copy)
    with open(copy / "model.nb", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ManifestError, match="sha256"):
        pipeline_for(copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["schema_version"] = 99
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="schema_version"):
        pipeline_for(copy)


def _resize_op(manifest):
    return next(op for op in manifest["preprocess"] if op["type"] == "Resize")


TAMPERED_MANIFESTS = [
    ("draw_threshold text", lambda m: m.update(draw_threshold="abc"), "draw_threshold"),
    ("mask stride 0", lambda m: m["outputs"]["mask"].update(stride=0), "outputs.mask.stride"),
    ("mask stride text", lambda m: m["outputs"]["mask"].update(stride="x"), "outputs.mask.stride"),
    ("target_size [0, 0]", lambda m: _resize_op(m).update(target_size=[0, 0]), "target_size"),
    ("inputs not a list", lambda m: m.update(inputs={"name": "image"}), "inputs"),
    ("an input without a name", lambda m: m["inputs"][0].pop("name"), "inputs"),
    ("labels not strings", lambda m: m.update(labels=[1, 2]), "labels"),
]


@pytest.mark.parametrize("change,field", [c[1:] for c in TAMPERED_MANIFESTS], ids=[c[0] for c in TAMPERED_MANIFESTS])
def test_tampered_manifest_field_is_named(standin_edge, tmp_path, change, field, photo):
    import shutil

    copy = tmp_path / "bundle"
    shutil.copytree(standin_edge.bundle_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    change(manifest)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match=field.replace(".", r"\.")):
        list(pipeline_for(copy).predict(photo))


def test_unavailable_device(standin_edge):
    with pytest.raises(ConfigError, match="gpu:0"):
        create_pipeline(config={"SubModules": {"InstanceSegmentation": {"model_dir": str(standin_edge.bundle_dir)}}},
                        device="gpu:0")
    with pytest.raises(ConfigError, match="unknown device"):
        create_pipeline(config={"SubModules": {"InstanceSegmentation": {"model_dir": str(standin_edge.bundle_dir)}}},
                        device="tpu")


def test_pipeline_yaml_with_model_dir(standin_edge, tmp_path, photo):
    import yaml

    from edge.config import write_default_config

    path = write_default_config(tmp_path)
    config = yaml.safe_load(path.read_text())
    config["SubModules"]["InstanceSegmentation"]["model_dir"] = str(standin_edge.bundle_dir)
    config["SubModules"]["InstanceSegmentation"]["threshold"] = 0.55
    path.write_text(yaml.safe_dump(config))
    pipe = create_pipeline(str(path))
    res = list(pipe.predict(photo))[0]
    assert pipe.predictor.name == "lite" and all(b["score"] > 0.55 for b in res["boxes"])


def test_video_frames_stream(standin_edge, photo, tmp_path):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (160, 120))
    for _ in range(3):
        writer.write(cv2.resize(photo, (160, 120)))
    writer.release()
    results = list(pipeline_for(standin_edge.bundle_dir).predict(str(video)))
    assert [r["page_index"] for r in results] == [0, 1, 2]


def test_bundle_pipeline_yaml_works_from_any_directory(standin_edge, photo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # model_dir: . in the bundle's pipeline.yaml is relative to the YAML
    pipe = create_pipeline(str(standin_edge.bundle_dir / "pipeline.yaml"))
    assert pipe.predictor.name == "lite" and list(pipe.predict(photo))[0]["boxes"]


def test_top_level_create_pipeline_like_paddlex(standin_edge, photo):
    import edge

    pipe = edge.create_pipeline(pipeline="instance_segmentation",
                                config={"SubModules": {"InstanceSegmentation": {"model_dir": str(standin_edge.bundle_dir)}}})
    assert list(pipe.predict(photo, threshold=0.5))[0]["boxes"]
