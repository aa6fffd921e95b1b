"""The JSON API for people and the web UI: ``GET /api/v1/models``, ``POST /api/v1/classify``."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from ..pipeline import Classifier
from ..settings import MAX_TOP_K
from .context import AppContext, get_context
from .errors import IMAGE_ERRORS, MODEL_ERRORS, RETRY_NOTE, SERVICE_ERRORS, UPLOAD_ERRORS, error_responses, wanwu_error_body
from .inference import Classified
from .schemas import ClassifyResponse, ErrorResponse, ModelsResponse
from .uploads import read_uploads

router = APIRouter(prefix="/api/v1", tags=["JSON API"])

_ERRORS = error_responses(*UPLOAD_ERRORS, *MODEL_ERRORS, *IMAGE_ERRORS, *SERVICE_ERRORS, model=ErrorResponse, **RETRY_NOTE)

_CLASSIFY_BODY = {
    "requestBody": {
        "required": True,
        "description": (
            "Either a multipart form with one or many `file` fields, or the image itself as the "
            "raw body (any other content type; its name from the `X-Filename` header)."
        ),
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object", "required": ["file"],
                    "properties": {"file": {"type": "array", "minItems": 1,
                                            "items": {"type": "string", "format": "binary"}}},
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}

TopK = Annotated[int | None, Query(ge=1, le=MAX_TOP_K, description=f"predictions per image (1-{MAX_TOP_K}); default: --top-k")]
ModelName = Annotated[str | None, Query(description="model name from /api/v1/models; default: the server's --model")]


def _envelope(clf: Classifier, results: list[Classified]) -> dict:
    return {
        "model": clf.model_name, "engine": clf.engine.name, "precision": clf.engine.precision,
        "results": [r.to_dict() for r in results],
    }


@router.get("/models", response_model=ModelsResponse, summary="List models")
async def list_models(ctx: Annotated[AppContext, Depends(get_context)]) -> dict:
    """Every model wanwu knows: availability (with how to get missing weights), published
    accuracy, input size, and whether this server has it in memory."""
    return {"default": ctx.config.model, "models": ctx.service.pool.describe()}


@router.post(
    "/classify", response_model=ClassifyResponse, response_model_exclude_none=True,
    summary="Classify images", responses=_ERRORS, openapi_extra=_CLASSIFY_BODY,
)
async def classify(
    request: Request,
    ctx: Annotated[AppContext, Depends(get_context)],
    top_k: TopK = None,
    model: ModelName = None,
):
    """Top-k ImageNet classes for each uploaded image, with timings in milliseconds.

    One image that fails answers with its own status (415, 422, 413) and an `error` object.
    With several files, the answer is 200 and each failed image carries an `error` object in
    `results` instead of `predictions`; only when every image fails does the status become the
    first image's error status (the body then holds `error` and `results`).
    """
    clf = await ctx.service.classifier(model)  # unknown / unavailable model: before reading the body
    k = top_k or ctx.config.top_k
    uploads = await read_uploads(request, max_files=ctx.config.max_files)
    results = list(await asyncio.gather(
        *(ctx.service.classify(u.data, model=clf.model_name, top_k=k, filename=u.filename) for u in uploads)
    ))
    del uploads
    _record(ctx, clf, results)
    failed = [r.result.error for r in results if r.result.error is not None]
    if failed and len(failed) == len(results):
        first = failed[0]
        body = {"error": wanwu_error_body(first)}
        if len(results) > 1:
            body["results"] = [r.to_dict() for r in results]
        return JSONResponse(body, status_code=first.http_status)
    return _envelope(clf, results)


def _record(ctx: AppContext, clf: Classifier, results: list[Classified]) -> None:
    """Images answered and failed (stage times are recorded by the stage runner)."""
    for r in results:
        if r.result.error is not None:
            ctx.metrics.errors.labels(r.result.error.code).inc()
        else:
            ctx.metrics.count_images(clf.model_name)
