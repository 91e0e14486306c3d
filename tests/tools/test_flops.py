"""tools/flops.py counts multiply-accumulates from a saved program: checked on programs whose count
is known by hand (a conv, a transposed matmul, the stand-in network)."""
from __future__ import annotations

import export  # noqa: F401  (legacy programs before paddle is imported)
import paddle

from tools.flops import count_program


class ConvMatmul(paddle.nn.Layer):
    def __init__(self):
        super().__init__()
        self.conv = paddle.nn.Conv2D(3, 4, 3, padding=1)
        self.depthwise = paddle.nn.Conv2D(4, 4, 3, padding=1, groups=4)
        self.weight = self.create_parameter([5, 64])

    def forward(self, x):
        y = self.depthwise(self.conv(x))  # [1,4,8,8]
        return paddle.matmul(paddle.reshape(y, [1, 4, 64]), self.weight, transpose_y=True)  # [1,4,5]


def test_counts_conv_depthwise_and_matmul(tmp_path):
    paddle.seed(0)
    layer = ConvMatmul()
    layer.eval()
    static = paddle.jit.to_static(layer, input_spec=[paddle.static.InputSpec([1, 3, 8, 8], "float32", "x")], full_graph=True)
    paddle.jit.save(static, str(tmp_path / "inference"))
    counts = count_program(tmp_path / "inference.pdmodel")
    conv = 4 * 8 * 8 * 3 * 3 * 3  # Cout*H*W * Cin*kh*kw
    depthwise = 4 * 8 * 8 * 1 * 3 * 3  # groups=4: one input channel per output
    matmul = 4 * 5 * 64  # M*N*K
    assert sum(counts["macs_by_op"].values()) == counts["macs"] == conv + depthwise + matmul
    assert counts["macs_by_op"]["matmul_v2"] == matmul
    assert counts["gflops"] == 2 * counts["macs"] / 1e9
    assert counts["open_shape_ops"] == {}


def test_counts_the_standin_network(tmp_path):
    from standin import export_standin

    counts = count_program(export_standin(tmp_path / "m", input_size=(64, 64)) / "inference.pdmodel")
    # after 4x average pooling: 16x16; stem 3->8 3x3, class head 8->3 1x1, mask head 8->1 1x1
    assert counts["macs_by_op"]["conv2d"] == 16 * 16 * (8 * 3 * 9 + 3 * 8 + 1 * 8)
    assert counts["uncounted_ops"].get("sigmoid", 0) >= 1  # listed by count, not by cost


def test_estimates_scale_the_published_figures_by_macs():
    from tools.flops import ANCHORS, estimates

    rows = estimates({"net": {"gmacs": 8.0}}, resnet50_gmacs=4.0)  # twice ResNet-50's work
    assert len(rows) == len(ANCHORS)
    for row, anchor in zip(rows, ANCHORS):
        assert row["net"] == {"fp32_ms": round(2 * anchor[3]), "int8_ms": round(2 * anchor[4])}
        assert row["source"].startswith("https://")
