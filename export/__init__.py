"""Host-side export: source -> program -> compat -> quantize -> optimize -> verify -> bundle.

Paddle Lite reads only legacy `inference.pdmodel` programs, and Paddle 3.x saves those only when
the PIR API is off *before paddle is imported*; importing this package first makes sure of that.
"""
import os

os.environ.setdefault("FLAGS_enable_pir_api", "0")
