"""Pre-processing against docs/REFERENCE.md's description of PaddleX (vectors computed here from it)."""
import cv2
import numpy as np
import pytest

from edge.errors import ModelError
from edge.preprocess import INTERP_CODES, Preprocessor, resize_image
from edge.spec import ModelSpec


def make_spec(ops):
    return ModelSpec("m", "PPYOLOE", ops, ["a"])


NORM_NONE = {"type": "NormalizeImage", "mean": [0, 0, 0], "std": [1, 1, 1], "norm_type": "none"}


@pytest.fixture()
def image():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)


def opencv_resize_without_ipp(img, size, interpolation):
    cv2.ipp.setUseIPP(False)
    try:
        return cv2.resize(img, size, interpolation=interpolation)
    finally:
        cv2.ipp.setUseIPP(True)


@pytest.mark.parametrize("interp", sorted(INTERP_CODES))
def test_resize_without_keep_ratio_matches_opencv_for_every_interp(image, interp):
    feeds = Preprocessor(make_spec([{"type": "Resize", "target_size": [20, 30], "keep_ratio": False, "interp": interp},
                                    {"type": "Permute"}]))(image)
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    expected = opencv_resize_without_ipp(rgb, (30, 20), INTERP_CODES[interp]).astype(np.float32).transpose(2, 0, 1)
    np.testing.assert_array_equal(feeds["image"][0], expected)
    np.testing.assert_allclose(feeds["im_shape"], [[20, 30]])
    np.testing.assert_allclose(feeds["scale_factor"], [[20 / 37, 30 / 53]], rtol=1e-6)
    assert feeds["image"].dtype == np.float32 and feeds["image"].shape == (1, 3, 20, 30)


def test_resize_uses_opencvs_own_cubic_kernel_and_leaves_ipp_as_it_was(image):
    """IPP's cubic differs from OpenCV's own kernel by one level on .5 ties: the runtime uses OpenCV's
    (the Java core reproduces it bit for bit), and only for its own call."""
    if not cv2.ipp.useIPP():
        pytest.skip("this OpenCV has no IPP (ARM builds): its resize is OpenCV's own already")
    big = cv2.GaussianBlur(np.tile(image, (4, 4, 1)), (5, 5), 2)
    ours = resize_image(big, 61, 47, cv2.INTER_CUBIC)
    assert cv2.ipp.useIPP()
    with_ipp = cv2.resize(big, (61, 47), interpolation=cv2.INTER_CUBIC)
    np.testing.assert_array_equal(ours, opencv_resize_without_ipp(big, (61, 47), cv2.INTER_CUBIC))
    difference = np.abs(ours.astype(int) - with_ipp.astype(int))
    assert difference.max() == 1 and difference.mean() < 0.05  # the tie rounding, nothing else


def test_inference_dirs_resize_as_paddlex_does(image):
    """`portable_resize=False` (inference directories, held to PaddleX's results) is `cv2.resize` as
    OpenCV dispatches it, IPP included where there is one; the portable resize differs on .5 ties."""
    big = cv2.GaussianBlur(np.tile(image, (4, 4, 1)), (5, 5), 2)
    ops = [{"type": "Resize", "target_size": [47, 61], "keep_ratio": False, "interp": 2}, {"type": "Permute"}]
    paddlex_like = Preprocessor(make_spec(ops), portable_resize=False)(big)["image"][0]
    expected = cv2.resize(cv2.cvtColor(big, cv2.COLOR_BGR2RGB), (61, 47), interpolation=cv2.INTER_CUBIC)
    np.testing.assert_array_equal(paddlex_like, expected.transpose(2, 0, 1).astype(np.float32))
    if cv2.ipp.useIPP():
        portable = Preprocessor(make_spec(ops))(big)["image"][0]
        assert not np.array_equal(portable, paddlex_like)


def test_normalisation_constants_are_paddlexs(image):
    """alpha = scale / std and beta = -mean / std in double, then float32 (PaddleX's arithmetic): a
    1-ulp difference in the input changes a random-weight RCNN's masks (tests/edge/families)."""
    op = {"type": "NormalizeImage", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "is_scale": True}
    got = Preprocessor(make_spec([op, {"type": "Permute"}]))(image)["image"][0]
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32)
    for c in range(3):
        alpha, beta = np.float32(1 / 255.0 / op["std"][c]), np.float32(-op["mean"][c] / op["std"][c])
        np.testing.assert_array_equal(got[c], rgb[:, :, c] * alpha + beta)


def test_resize_keep_ratio_uses_paddlex_scale_rule(image):
    # scale = min(max(t)/max(img), min(t)/min(img)); sizes rounded; scale_factor = new/old per axis
    feeds = Preprocessor(make_spec([{"type": "Resize", "target_size": [64, 100], "keep_ratio": True, "interp": 1}]))(image)
    scale = min(100 / 53, 64 / 37)
    new_h, new_w = round(37 * scale), round(53 * scale)
    assert feeds["image"].shape == (1, 3, new_h, new_w)
    np.testing.assert_allclose(feeds["im_shape"], [[new_h, new_w]])
    np.testing.assert_allclose(feeds["scale_factor"], [[new_h / 37, new_w / 53]], rtol=1e-6)


def test_model_sees_rgb_scaled_to_unit_range(image):
    feeds = Preprocessor(make_spec([NORM_NONE, {"type": "Permute"}]))(image)
    # channel 0 of the model input is the R channel (BGR index 2), divided by 255
    np.testing.assert_allclose(feeds["image"][0, 0], image[:, :, 2] / 255.0, rtol=1e-6)
    np.testing.assert_allclose(feeds["image"][0, 2], image[:, :, 0] / 255.0, rtol=1e-6)


def test_normalize_mean_std_and_is_scale(image):
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    ops = [{"type": "NormalizeImage", "mean": mean, "std": std, "is_scale": True, "norm_type": "mean_std"}, {"type": "Permute"}]
    got = Preprocessor(make_spec(ops))(image)["image"][0]
    rgb = image[:, :, ::-1].astype(np.float64)
    for c in range(3):
        np.testing.assert_allclose(got[c], (rgb[:, :, c] / 255.0 - mean[c]) / std[c], rtol=1e-5, atol=1e-5)
    ops[0]["is_scale"] = False
    got = Preprocessor(make_spec(ops))(image)["image"][0]
    np.testing.assert_allclose(got[1], (rgb[:, :, 1] - mean[1]) / std[1], rtol=1e-5)


def test_pad_fills_with_127_5_at_bottom_right(image):
    feeds = Preprocessor(make_spec([{"type": "Pad", "size": [40, 60]}, {"type": "Permute"}]))(image)
    img = feeds["image"][0]
    assert img.shape == (3, 40, 60)
    assert np.all(img[:, 37:, :] == 127.5) and np.all(img[:, :, 53:] == 127.5)
    np.testing.assert_array_equal(img[:, :37, :53], image[:, :, ::-1].transpose(2, 0, 1))
    np.testing.assert_allclose(feeds["im_shape"], [[37, 53]])  # padding does not change im_shape


def test_pad_stride_after_permute_pads_chw_with_zeros(image):
    feeds = Preprocessor(make_spec([NORM_NONE, {"type": "Permute"}, {"type": "PadStride", "stride": 32}]))(image)
    img = feeds["image"][0]
    assert img.shape == (3, 64, 64)
    assert np.all(img[:, 37:, :] == 0) and np.all(img[:, :, 53:] == 0)


def test_official_edge_model_preprocess_640(photo):
    ops = [{"type": "Resize", "target_size": [640, 640], "keep_ratio": False, "interp": 2}, NORM_NONE, {"type": "Permute"}]
    feeds = Preprocessor(make_spec(ops))(photo)
    h, w = photo.shape[:2]
    assert feeds["image"].shape == (1, 3, 640, 640)
    np.testing.assert_allclose(feeds["scale_factor"], [[640 / h, 640 / w]], rtol=1e-6)
    assert 0.0 <= feeds["image"].min() and feeds["image"].max() <= 1.0


def test_unknown_op_is_a_model_error():
    with pytest.raises(ModelError, match="WarpAffine"):
        Preprocessor(make_spec([{"type": "WarpAffine"}]))


def test_bad_interp_code_is_a_model_error():
    with pytest.raises(ModelError, match="interp"):
        Preprocessor(make_spec([{"type": "Resize", "target_size": [8, 8], "interp": 9}]))
