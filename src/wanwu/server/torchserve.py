"""TorchServe-style conveniences: ``GET /ping`` and ``POST|PUT /predictions/{model}`` with the
image as the raw body (so ``curl -T cat.jpg .../predictions/efficientnet_lite0`` works) or
as a multipart ``data``/``file`` field. The answer maps label -> score, best first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from .context import AppContext, get_context
from .schemas import ErrorResponse
from .uploads import read_uploads

_ERRORS = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        400: "malformed multipart body", 404: "unknown model", 409: "model weights missing",
        408: "the body arrived too slowly (--body-timeout)", 413: "body or image too large",
        415: "not an image, or a JSON/text body", 422: "truncated, corrupt or empty image",
        503: "busy, over --request-timeout, or shutting down (see Retry-After)",
    }.items()
}
router = APIRouter(tags=["TorchServe style"])
Ctx = Annotated[AppContext, Depends(get_context)]
TOP_K = 5  # what TorchServe's image_classifier handler returns


_UNHEALTHY = {503: {"description": '{"status": "Unhealthy"}: starting or shutting down'}}


@router.get("/ping", summary="Health (TorchServe style)", responses=_UNHEALTHY)
async def ping(ctx: Ctx) -> JSONResponse:
    if ctx.service.ready:
        return JSONResponse({"status": "Healthy"})
    return JSONResponse({"status": "Unhealthy"}, status_code=503)


@router.post("/predictions/{model}", summary="Classify one image (TorchServe style)", responses=_ERRORS)
@router.put("/predictions/{model}", summary="Classify one image (curl -T sends PUT)", responses=_ERRORS)
async def predictions(model: str, request: Request, ctx: Ctx) -> dict[str, float]:
    """`{"tabby": 0.62, "tiger cat": 0.21, ...}`: the top 5 labels and their probabilities."""
    clf = await ctx.service.classifier(model)
    upload = (await read_uploads(request, max_files=1, fields=("data", "file")))[0]
    classified = await ctx.service.classify(upload.data, model=clf.model_name, top_k=TOP_K, filename=upload.filename)
    result = classified.result
    if result.error is not None:
        raise result.error
    ctx.metrics.count_images(clf.model_name)
    out: dict[str, float] = {}
    for p in result.predictions:
        out.setdefault(p.label, p.score)  # two ImageNet classes share a name ("crane"): keep the better
    return out
