"""Time of each `edge export --int8` step for PP-YOLOE_seg-S (640x640, 80 classes) with 32 calibration images.

Target: the whole INT8 export in at most 10 minutes on a 2-core machine. Weights are seeded random
(the official ones cannot be downloaded here); step times do not depend on the weights' values.
Calibration images: the 6 shipped photos, repeated (as copies) to 32 files.
"""
import shutil



def test_int8_export_steps_ppyoloe_seg(long_benchmark, benchmark, tmp_path):
    import paddle

    import export  # noqa: F401
    from export.exporter import ExportOptions, export_model
    from export.precision import Precision
    from export.networks.ppyoloe_seg import export_ppyoloe_seg
    from export.quantize import DEFAULT_CALIB_DIR, list_calibration_images
    from export.source import resolve_source

    paddle.seed(0)
    model_dir = export_ppyoloe_seg(tmp_path / "model", graph="edge")
    calib = tmp_path / "calib"
    calib.mkdir()
    photos = list_calibration_images(DEFAULT_CALIB_DIR)
    for i in range(32):
        shutil.copy(photos[i % len(photos)], calib / f"{i:02d}{photos[i % len(photos)].suffix}")
    options = ExportOptions(target="arm", precision=Precision.INT8, calib_dir=calib, calib_count=32, out_dir=tmp_path / "out")

    result = benchmark.pedantic(lambda: export_model(resolve_source(model_dir=model_dir), options), rounds=1)
    total = sum(result.step_seconds.values())
    benchmark.extra_info.update({"step_seconds": result.step_seconds, "total_seconds": round(total, 1)})
    print(f"\nPP-YOLOE_seg-S --int8 export steps (s): {result.step_seconds}, total {total:.0f} s")
    assert result.manifest["quantization"]["count"] == 32
