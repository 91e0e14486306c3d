"""Datasets the project makes itself: a seeded synthetic instance-segmentation set in COCO format."""
from export.dataset.synthetic import (
    ANNOTATIONS_FILENAME,
    CATEGORY_NAMES,
    IMAGES_DIRNAME,
    generate,
    generate_splits,
)

__all__ = [
    "ANNOTATIONS_FILENAME",
    "CATEGORY_NAMES",
    "IMAGES_DIRNAME",
    "generate",
    "generate_splits",
]
