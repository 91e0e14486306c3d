"""PaddleDetection reference harness (README.md); weights_recipe is shared with the tests."""
