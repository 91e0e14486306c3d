"""Our mask paste costs in proportion to the box, not to the image (issue 17, point 1).

On one fixed 1920x1080 image, a small box (32x32 px) and a large one (1280x720 px, 900x the area):
our three pastes (`crop_full_mask` for programs that give full-image masks, `lowres_mask_in_box` for our
edge graphs' low-resolution masks, the RCNN families' 28x28 masks pasted by `edge/paste.py` through the
same `crop_full_mask`) are timed side by side in one process, and the ratio of their times
is reported next to the ratio of the areas. Also, as reference, one whole-image paste (what the RCNN
programs' `MaskPostProcess` does for every box) timed in the same run: a small box costs a small fraction of it.
What is asserted is only the shape of each result; the ratios are reported.
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from edge.paste import PastedMasks
from edge.postprocess import crop_full_mask, lowres_mask_in_box
from edge.spec import MaskLayout

H, W = 1080, 1920
SMALL, LARGE = (100, 100, 132, 132), (300, 200, 1580, 920)  # x1, y1, x2, y2
SCALE = (640 / H, 640 / W)  # the program's input was 640x640
LAYOUT = MaskLayout("lowres", 4, 0.5)


def _median_us(fn, runs: int = 200) -> float:
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def test_paste_cost_follows_the_box(benchmark):
    rng = np.random.default_rng(0)
    full = (rng.random((H, W)) > 0.5).astype(np.uint8)  # one full-image mask, as RCNN/SOLOv2 programs give
    lowres = rng.random((160, 160)).astype(np.float32)  # one 160x160 mask (640 / stride 4), as our edge graphs give

    roi = rng.random((2, 28, 28)).astype(np.float32)  # the RCNN programs' masks, one per box
    pasted = PastedMasks(roi, np.float32([SMALL, LARGE]), (H, W))
    results = {}
    for name, paste in (("crop_full_mask", lambda r: crop_full_mask(full, r)),
                        ("lowres_mask_in_box", lambda r: lowres_mask_in_box(lowres, r, SCALE, LAYOUT)),
                        ("rcnn_paste_in_box", lambda r: crop_full_mask(pasted[0 if r == SMALL else 1], r))):
        small_us, large_us = _median_us(lambda: paste(SMALL)), _median_us(lambda: paste(LARGE))
        assert paste(SMALL).shape == (32, 32) and paste(LARGE).shape == (720, 1280)
        results[name] = {"small_us": small_us, "large_us": large_us, "time_ratio": large_us / small_us}
    whole_us = _median_us(lambda: np.asarray(pasted[1]), runs=20)
    area_ratio = (1280 * 720) / (32 * 32)
    benchmark.extra_info.update({"area_ratio": area_ratio, "whole_image_paste_us": whole_us, **results})
    benchmark.pedantic(lowres_mask_in_box, args=(lowres, SMALL, SCALE, LAYOUT), rounds=20, iterations=1)
    for name, r in results.items():
        print(f"\n{name}: 32x32 box {r['small_us']:.1f} us, 1280x720 box {r['large_us']:.1f} us, "
              f"time ratio {r['time_ratio']:.0f} (area ratio {area_ratio:.0f}); "
              f"small box / one whole-image paste {r['small_us'] / whole_us:.4f}")
