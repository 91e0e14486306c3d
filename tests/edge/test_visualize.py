"""edge.visualize: colours, blending, labels and borders of the result picture."""
from __future__ import annotations

from typing import List, Tuple

import numpy as np
import pytest
from PIL import Image, ImageFont

from edge.visualize import COLORMAP, draw_instances, label_font

ALPHA, W_RATIO = 0.7, 0.4  # docs/REFERENCE.md "Visualisation"


def expected_mask_pixel(background: int, rgb: Tuple[int, int, int]) -> Tuple[int, ...]:
    """PaddleX's formula: colour lightened towards white, then alpha-blended over the pixel."""
    light = [int(c * (1 - W_RATIO) + W_RATIO * 255) for c in rgb]
    return tuple(int(background * (1 - ALPHA) + ALPHA * c) for c in light)


def instance(cls_id: int, box: Tuple[float, float, float, float], label: str = "thing", score: float = 0.9):
    return {"cls_id": cls_id, "label": label, "score": score, "coordinate": list(box)}


def cropped_full_mask(box) -> np.ndarray:
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    return np.ones((y2 - y1, x2 - x1), np.uint8)


def test_colour_map_is_paddlex_map_in_rgb():
    assert len(COLORMAP) == 20
    assert COLORMAP[0] == (0xFF, 0x00, 0x00) and COLORMAP[3] == (0x00, 0x66, 0xFF)
    assert COLORMAP[19] == (0xFF, 0x00, 0x4D)


@pytest.mark.parametrize("cls_id", [0, 3, 5, 12, 23])
def test_mask_pixels_have_the_right_rgb_values(cls_id):
    image = np.zeros((120, 160, 3), np.uint8)  # black, BGR
    box = (40, 50, 110, 100)
    picture = draw_instances(image, [instance(cls_id, box)], [cropped_full_mask(box)])
    assert picture.mode == "RGB" and picture.size == (160, 120)
    pixels = np.asarray(picture)
    expected = expected_mask_pixel(0, COLORMAP[cls_id % 20])
    assert tuple(pixels[80, 75]) == expected  # inside the mask, away from lines and label
    assert tuple(pixels[10, 150]) == (0, 0, 0)  # outside: untouched


def test_blend_over_a_grey_image_and_partial_mask():
    image = np.full((60, 60, 3), 100, np.uint8)
    box = (10, 20, 40, 50)
    mask = np.zeros((30, 30), np.uint8)
    mask[5:25, 5:15] = 1  # left part only
    pixels = np.asarray(draw_instances(image, [instance(8, box)], [mask]))
    assert tuple(pixels[35, 20]) == expected_mask_pixel(100, COLORMAP[8])  # mask (y=20+15, x=10+10)
    assert tuple(pixels[35, 32]) == (100, 100, 100)  # inside the box, outside the mask


def test_input_is_converted_from_bgr():
    blue_bgr = np.zeros((10, 10, 3), np.uint8)
    blue_bgr[..., 0] = 255
    pixels = np.asarray(draw_instances(blue_bgr, [], []))
    assert tuple(pixels[5, 5]) == (0, 0, 255)
    assert blue_bgr[5, 5, 0] == 255 and blue_bgr[5, 5, 2] == 0, "the input is not modified"


def test_every_instance_of_a_class_has_the_same_colour():
    image = np.zeros((200, 300, 3), np.uint8)
    boxes = [(20, 40, 80, 120), (120, 40, 180, 120), (200, 40, 260, 120)]
    results = [instance(2, boxes[0]), instance(7, boxes[1]), instance(2, boxes[2])]
    pixels = np.asarray(draw_instances(image, results, [cropped_full_mask(b) for b in boxes]))
    first, other, third = pixels[90, 50], pixels[90, 150], pixels[90, 230]
    assert tuple(first) == tuple(third) == expected_mask_pixel(0, COLORMAP[2])
    assert tuple(other) != tuple(first)
    # the box lines use the class colour itself
    assert tuple(pixels[90, 20]) == COLORMAP[2] == tuple(pixels[90, 200])


def test_label_is_drawn_above_the_box():
    image = np.zeros((200, 800, 3), np.uint8)  # font size int(0.018 * 800) + 2 = 16
    box = (50, 100, 450, 180)
    pixels = np.asarray(draw_instances(image, [instance(0, box, label="person", score=0.87)], []))
    above = pixels[70:100, 50:160]  # the label box sits on the top edge of the box
    fill = np.all(above == COLORMAP[0], axis=-1)
    assert fill.sum() > 200, "filled label box in the class colour"
    assert np.all(above == (255, 255, 255), axis=-1).sum() > 10, "white text on red"
    assert np.all(pixels[:60] == 0), "nothing far above the label"


def test_label_goes_below_the_top_edge_when_there_is_no_room():
    image = np.zeros((300, 800, 3), np.uint8)
    box = (100, 0, 700, 200)
    pixels = np.asarray(draw_instances(image, [instance(1, box, label="car")], []))
    inside = pixels[2:16, 103:140]  # just under the top edge, inside the box
    assert np.all(inside == COLORMAP[1], axis=-1).sum() > 100, "label box just under the top edge"
    # class 1 (light green) gets dark text: dark pixels on the green fill
    assert (inside[..., 1] < 100).sum() > 10


def test_box_thickness_scales_with_the_image():
    image = np.zeros((1080, 1920, 3), np.uint8)
    box = (500, 500, 900, 900)
    pixels = np.asarray(draw_instances(image, [instance(4, box)], []))
    column = np.all(pixels[700, 495:506] == COLORMAP[4], axis=-1)
    assert column.sum() == int(1920 * 0.002)  # 3 px wide


@pytest.mark.parametrize(
    "shape, box, mask_shape",
    [
        ((4, 4, 3), (0, 0, 4, 4), (4, 4)),  # tiny image
        ((50, 60, 3), (40, 30, 60, 50), (20, 20)),  # box on the bottom-right border
        ((50, 60, 3), (45, 35, 70, 80), (30, 40)),  # mask larger than what is left of the image
        ((50, 60, 3), (-5, -3, 20, 10), (13, 25)),  # box starting outside the image
        ((50, 60, 3), (10, 10, 10.2, 10.3), (0, 0)),  # degenerate box, empty mask
    ],
)
def test_no_crash_at_borders_and_tiny_images(shape, box, mask_shape):
    picture = draw_instances(np.zeros(shape, np.uint8), [instance(0, box)], [np.ones(mask_shape, np.uint8)])
    assert picture.size == (shape[1], shape[0])


def test_mask_offset_when_box_starts_outside():
    image = np.zeros((50, 60, 3), np.uint8)
    box = (-5, 30, 20, 45)
    mask = np.zeros((15, 25), np.uint8)
    mask[:, 5] = 1  # column 5 of the box = image column 0
    pixels = np.asarray(draw_instances(image, [instance(6, box)], [mask]))
    assert tuple(pixels[40, 0]) == expected_mask_pixel(0, COLORMAP[6])
    assert tuple(pixels[40, 3]) == (0, 0, 0)


def test_empty_result_and_mismatched_masks():
    image = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    np.testing.assert_array_equal(np.asarray(draw_instances(image, [], [])), image[:, :, ::-1])
    with pytest.raises(ValueError, match="one mask per box"):
        draw_instances(image, [instance(0, (0, 0, 5, 5))], [np.ones((5, 5)), np.ones((5, 5))])


def test_font_is_scalable_and_needs_no_download():
    font = label_font(int(0.018 * 1920) + 2)
    assert isinstance(font, ImageFont.FreeTypeFont) and font.size == 36
    small, large = label_font(10), label_font(40)
    assert small.getbbox("person 0.99")[2] < large.getbbox("person 0.99")[2]


def test_full_hd_with_twenty_instances():  # its speed is measured in benchmarks/, not asserted here
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
    boxes: List[dict] = []
    masks: List[np.ndarray] = []
    for i in range(20):
        x1, y1 = int(rng.integers(0, 1500)), int(rng.integers(0, 700))
        w, h = int(rng.integers(100, 400)), int(rng.integers(100, 380))
        boxes.append(instance(i % 7, (x1, y1, x1 + w, y1 + h), label=f"class{i % 7}"))
        masks.append((rng.random((h, w)) > 0.4).astype(np.uint8))
    picture = draw_instances(image, boxes, masks)
    assert isinstance(picture, Image.Image) and picture.size == (1920, 1080)
    assert np.asarray(picture).shape == (1080, 1920, 3)
