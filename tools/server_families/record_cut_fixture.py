"""Record what a cut RCNN program gives and what the whole program gives, on the same feeds.

The fixture lets CI check edge/paste.py against PaddleDetection's exported program itself (its
MaskPostProcess paste), without the 170 MB export: the cut program's boxes and 28x28 mask
probabilities, and the whole program's full-image masks (bit-packed).

    .venv/bin/python -m tools.server_families.record_cut_fixture --model-dir /work/refenv/families/legacy/MaskRCNN-ResNet50-FPN \
        --image tests/edge/families/images/000000014439.png --out tests/edge/cuts/legacy-MaskRCNN-ResNet50-FPN.npz
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from edge.backends.paddle import PaddleBackend
from edge.models import open_model_dir
from edge.preprocess import Preprocessor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--image", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    spec = open_model_dir(args.model_dir).spec
    feeds = Preprocessor(spec, portable_resize=False)(cv2.imread(str(args.image)))
    cut = PaddleBackend(args.model_dir, threads=2, cut="rcnn_paste")
    assert cut.cut == "rcnn_paste", "the program was not cut"
    bbox, bbox_num, pasted = cut.run(feeds)
    whole_bbox, whole_num, whole_masks = PaddleBackend(args.model_dir, threads=2).run(feeds)
    np.testing.assert_array_equal(bbox, whole_bbox)
    np.savez_compressed(
        args.out, im_shape=feeds["im_shape"], scale_factor=feeds["scale_factor"], bbox=bbox, bbox_num=bbox_num,
        probs=pasted.probs, whole_masks_shape=np.asarray(whole_masks.shape),
        whole_masks_bits=np.packbits(np.asarray(whole_masks, np.uint8).reshape(-1) != 0))
    print(f"{args.out}: {len(pasted)} masks of {pasted.shape[1:]} px, {args.out.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
