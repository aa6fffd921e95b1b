"""TorchServe-style conveniences: ``GET /ping`` and ``POST|PUT /predictions/{model}`` with the
image as the raw body (so ``curl -T cat.jpg .../predictions/efficientnet_lite0`` works) or
as a multipart ``data``/``file`` field. The answer maps label -> score, best first, the labels
in the language of ``?lang=`` or ``Accept-Language`` (English by default)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ..errors import UnsupportedLanguageError
from .context import AppContext, get_context
from .errors import IMAGE_ERRORS, MODEL_ERRORS, RETRY_NOTE, SERVICE_ERRORS, UPLOAD_ERRORS, error_responses
from .language import RequestLang
from .schemas import ErrorResponse
from .uploads import read_uploads

_ERRORS = error_responses(
    *UPLOAD_ERRORS,
    UnsupportedLanguageError,
    *MODEL_ERRORS,
    *IMAGE_ERRORS,
    *SERVICE_ERRORS,
    model=ErrorResponse,
    **RETRY_NOTE,
)
router = APIRouter(tags=["TorchServe style"])
Ctx = Annotated[AppContext, Depends(get_context)]
TOP_K = 5  # what TorchServe's image_classifier handler returns


_UNHEALTHY: dict[int | str, dict[str, Any]] = {
    503: {"description": '{"status": "Unhealthy"}: starting or shutting down'}
}


@router.get("/ping", summary="Health (TorchServe style)", responses=_UNHEALTHY)
async def ping(ctx: Ctx) -> JSONResponse:
    if ctx.service.ready:
        return JSONResponse({"status": "Healthy"})
    return JSONResponse({"status": "Unhealthy"}, status_code=503)


@router.post("/predictions/{model}", summary="Classify one image (TorchServe style)", responses=_ERRORS)
@router.put("/predictions/{model}", summary="Classify one image (curl -T sends PUT)", responses=_ERRORS)
async def predictions(model: str, request: Request, ctx: Ctx, lang: RequestLang) -> dict[str, float]:
    """`{"tabby": 0.62, "tiger cat": 0.21, ...}`: the top 5 labels and their probabilities
    (`?lang=zh` or `Accept-Language: zh`: `{"虎斑猫": 0.62, ...}`)."""
    clf = await ctx.service.classifier(model)
    upload = (await read_uploads(request, max_files=1, fields=("data", "file")))[0]
    classified = await ctx.service.classify(upload.data, model=clf.model_name, top_k=TOP_K, filename=upload.filename)
    result = classified.result
    if result.error is not None:
        raise result.error
    ctx.metrics.count_images(clf.model_name)
    out: dict[str, float] = {}
    for p in result.predictions:
        out.setdefault(p.label_in(lang), p.score)  # two classes share an English name ("crane"): keep the better
    return out
