"""Program cuts against the exported programs themselves, from fixtures the harness recorded.

Each fixture (tools/server_families/record_cut_fixture.py) holds, for one photo, what a PaddleDetection
export of an RCNN family gives when cut before its MaskPostProcess (boxes and 28x28 mask probabilities)
and the full-image masks the whole program pastes itself. edge/paste.py must paste exactly those masks.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.paste import PastedMasks

FIXTURES = sorted(Path(__file__).resolve().parent.glob("*.npz"))


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.stem for f in FIXTURES])
def test_box_local_paste_equals_the_programs_own_paste(fixture):
    data = np.load(fixture)
    shape = tuple(data["whole_masks_shape"])
    whole = np.unpackbits(data["whole_masks_bits"], count=int(np.prod(shape))).reshape(shape)
    origin = np.floor(data["im_shape"][0] / data["scale_factor"][0] + np.float32(0.5)).astype(int)
    pasted = PastedMasks(data["probs"], data["bbox"][:len(data["probs"]), 2:6], tuple(origin))
    assert len(pasted) == shape[0] > 10 and pasted.shape == shape
    assert whole.any()
    np.testing.assert_array_equal(np.asarray(pasted), whole)
    for i, box in enumerate(data["bbox"][:len(pasted), 2:6]):   # a window, as post-processing reads one
        x1, y1, x2, y2 = (int(v) for v in np.round(box))
        np.testing.assert_array_equal(pasted[i][y1:y2 + 1, x1:x2 + 1], whole[i, max(y1, 0):y2 + 1, max(x1, 0):x2 + 1])
