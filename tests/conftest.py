"""Test-wide set-up: Paddle must be in legacy-program mode before anything imports it.

`import export` sets FLAGS_enable_pir_api=0, which Paddle reads once at import; the export code
saves programs Paddle Lite can read only in that mode, whichever test module imports paddle first.
"""
import export  # noqa: F401
