"""Our own Paddle definitions of the two edge networks, with PaddleDetection's parameter names.

They rebuild an inference program from bare weights (`.pdparams`) or a PIR-only model, and can
export an *edge graph* (no control flow, no bmm, no BOOL parameters, no 0-D tensors, low-resolution
masks) that Paddle Lite converts and runs.
"""
