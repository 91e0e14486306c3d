"""`edge serve`: the instance-segmentation pipeline behind PaddleX's HTTP serving contract.

Modules: `codec` (RLE masks, Base64 images; no web framework, the `remote` client uses it too),
`limits` (the server's resource limits), `schemas` (request / response models for OpenAPI),
`worker` (inference off the event loop with a bounded queue), `gate` (ASGI admission: body
deadline, size and memory budget, queue place), `connection` (uvicorn's h11 connection with a
request-head deadline), `app` (the FastAPI app factory), `runner` (uvicorn). Importing this package imports no web framework.
"""
