"""Request and response models of PaddleX's instance-segmentation service (for validation and OpenAPI)."""
from __future__ import annotations

from typing import List, Optional

from pydantic import BaseModel, Field


class InferRequest(BaseModel):
    image: str = Field(
        ..., description="An http(s) URL the server can fetch, or the Base64 of the image file's bytes."
    )
    threshold: Optional[float] = Field(
        None, gt=0, lt=1, description="Score threshold in (0, 1); null means the pipeline's default (0.5)."
    )
    visualize: Optional[bool] = Field(
        None, description="Return the visualised result as Base64 JPEG; null means the server's default (true)."
    )


class Mask(BaseModel):
    rleResult: str = Field(..., description="COCO compressed RLE counts of the box-cropped mask (pycocotools), UTF-8.")
    size: List[int] = Field(..., description="[height, width] of the box-cropped mask.")


class Instance(BaseModel):
    bbox: List[float] = Field(..., description="[x1, y1, x2, y2] in original-image pixels, clipped to the image.")
    categoryId: int
    categoryName: str
    score: float
    mask: Mask


class InferResult(BaseModel):
    instances: List[Instance]
    image: Optional[str] = Field(None, description="Visualised result, Base64 JPEG; left out when not visualised.")


class NoResultResponse(BaseModel):
    logId: str = Field(..., description="UUID4 of this request, also in the server log.")
    errorCode: int = Field(..., description="0 on success, otherwise the HTTP status.")
    errorMsg: str


class InferResponse(NoResultResponse):
    result: InferResult
