"""Strict weight loading by PaddleDetection key names (export/networks/weights.py)."""
from __future__ import annotations

from pathlib import Path

import export  # noqa: F401  (turns the PIR API off before paddle is imported)
import numpy as np
import paddle
import pytest

from edge.errors import ModelError
from export.networks.weights import load_weights, read_layout_tsv, state_dict_layout

PARAMS_DIR = Path(__file__).resolve().parents[2] / "data" / "ppdet_params"


class ConvBN(paddle.nn.Layer):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = paddle.nn.Conv2D(cin, cout, 3, padding=1, bias_attr=False)
        self.bn = paddle.nn.BatchNorm2D(cout)

    def forward(self, x):
        return self.bn(self.conv(x))


class Tiny(paddle.nn.Layer):
    def __init__(self, classes: int = 4):
        super().__init__()
        self.stem = ConvBN(3, 8)
        self.head = paddle.nn.Conv2D(8, classes, 1)

    def forward(self, x):
        return self.head(self.stem(x))


def _random_state(layer, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(v.shape).astype("float32") for k, v in layer.state_dict().items()}


def test_layout_names_bn_statistics_like_paddledetection():
    layout = dict(state_dict_layout(Tiny()))
    assert layout["stem.conv.weight"] == (8, 3, 3, 3)
    assert layout["stem.bn._mean"] == (8,)
    assert layout["stem.bn._variance"] == (8,)
    assert layout["head.bias"] == (4,)


def test_load_from_dict_and_from_pdparams_file(tmp_path):
    source = _random_state(Tiny(), seed=1)
    for given in (source, tmp_path / "w.pdparams"):
        if not isinstance(given, dict):
            paddle.save({k: paddle.to_tensor(v) for k, v in source.items()}, str(given))
        net = Tiny()
        load_weights(net, given)
        for k, v in net.state_dict().items():
            np.testing.assert_array_equal(v.numpy(), source[k], err_msg=k)


def test_mis_shaped_key_names_key_file_and_num_classes(tmp_path):
    state = _random_state(Tiny(classes=7), seed=2)
    path = tmp_path / "seven.pdparams"
    paddle.save(state, str(path))
    net = Tiny(classes=4)
    before = net.state_dict()["stem.conv.weight"].numpy().copy()
    with pytest.raises(ModelError) as info:
        load_weights(net, path)
    message = str(info.value)
    assert "head.weight [7, 8, 1, 1]" in message and "[4, 8, 1, 1]" in message
    assert str(path) in message and "--num-classes" in message
    # nothing was loaded half-way
    np.testing.assert_array_equal(net.state_dict()["stem.conv.weight"].numpy(), before)


def test_missing_and_unexpected_keys_are_named_when_strict():
    net = Tiny()
    state = _random_state(net, seed=3)
    del state["stem.bn._variance"]
    state["model.stem.bn._variance"] = np.ones(8, "float32")
    with pytest.raises(ModelError) as info:
        load_weights(net, state)
    message = str(info.value)
    assert "missing" in message and "stem.bn._variance" in message
    assert "unexpected" in message and "model.stem.bn._variance" in message


def test_not_strict_keeps_missing_parameters():
    net = Tiny()
    kept = net.state_dict()["head.bias"].numpy().copy()
    state = _random_state(net, seed=4)
    del state["head.bias"]
    load_weights(net, state, strict=False)
    np.testing.assert_array_equal(net.state_dict()["head.bias"].numpy(), kept)
    np.testing.assert_array_equal(net.state_dict()["head.weight"].numpy(), state["head.weight"])


def test_many_bad_keys_are_counted_not_all_listed():
    net = Tiny()
    state = {f"other.{i}": np.zeros(1, "float32") for i in range(40)}
    state.update(_random_state(net, seed=5))
    with pytest.raises(ModelError, match=r"40: .*\(and 35 more\)"):
        load_weights(net, state)


def test_missing_or_corrupt_file_is_model_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_weights(Tiny(), tmp_path / "absent.pdparams")
    bad = tmp_path / "bad.pdparams"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(ModelError, match="bad.pdparams"):
        load_weights(Tiny(), bad)


def test_read_layout_tsv_of_checked_in_layouts():
    layout = read_layout_tsv(PARAMS_DIR / "PP-YOLOE_seg-S.tsv")
    assert len(layout) == 473
    assert layout[0] == ("backbone.stem.conv1.conv.weight", (16, 3, 3, 3))
    assert len(dict(layout)) == len(layout)
    assert len(read_layout_tsv(PARAMS_DIR / "Mask-RT-DETR-S.tsv")) == 646


def test_read_layout_tsv_rejects_malformed_line(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("a.weight\t3,3\tfloat32\nno-tab-here\n")
    with pytest.raises(ModelError, match="bad.tsv:2"):
        read_layout_tsv(path)
