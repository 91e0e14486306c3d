"""Edge runtime for PaddleX instance segmentation (Paddle Lite, Paddle Inference, remote)."""

__version__ = "0.1.0"
