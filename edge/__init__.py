"""Edge runtime for PaddleX instance segmentation (Paddle Lite, Paddle Inference, remote).

    from edge import create_pipeline
    for res in create_pipeline("instance_segmentation").predict("img.jpg", threshold=0.5):
        res.print(); res.save_to_img("./output/"); res.save_to_json("./output/")
"""

__version__ = "0.1.0"


def create_pipeline(*args, **kwargs):
    """PaddleX's `create_pipeline` (see edge.pipeline.create_pipeline); imported lazily."""
    from .pipeline import create_pipeline as _create

    return _create(*args, **kwargs)
