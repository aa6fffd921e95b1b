"""The JSON API for people and the web UI: ``GET /api/v1/models``, ``POST /api/v1/classify``,
``POST /api/v1/explain``."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from ..envelope import envelope
from ..errors import AmbiguousLabelError, ImageInputError, UnknownLabelError, UnsupportedLanguageError
from ..pipeline import Classifier
from ..pipeline.explain import resolve_target
from ..settings import MAX_TOP_K
from ..tag_policy import STORED_TOP_K, Policy, policy, verdict
from .context import AppContext, context_of, get_context
from .errors import (
    IMAGE_ERRORS,
    MODEL_ERRORS,
    RETRY_NOTE,
    SERVICE_ERRORS,
    UPLOAD_ERRORS,
    BadRequestError,
    error_responses,
)
from .inference import Classified
from .language import LangQuery, RequestLang, response_language
from .routing import QueryRoute
from .schemas import ClassifyResponse, ErrorResponse, ExplainResponse, ModelsResponse
from .uploads import read_uploads

router = APIRouter(prefix="/api/v1", tags=["JSON API"])

_ERRORS = error_responses(
    *UPLOAD_ERRORS,
    UnsupportedLanguageError,
    *MODEL_ERRORS,
    *IMAGE_ERRORS,
    *SERVICE_ERRORS,
    model=ErrorResponse,
    **RETRY_NOTE,
)

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
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "array", "minItems": 1, "items": {"type": "string", "format": "binary"}}
                    },
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}

TopK = Annotated[
    int | None, Query(ge=1, le=MAX_TOP_K, description=f"predictions per image (1-{MAX_TOP_K}); default: --top-k")
]
ModelName = Annotated[str | None, Query(description="model name from /api/v1/models; default: the server's --model")]


def _envelope(clf: Classifier, results: list[Classified], lang: str, top_k: int, pol: Policy) -> dict:
    return envelope(clf, [_without_none(_with_verdict(r, lang, top_k, pol)) for r in results], lang)


def _with_verdict(r: Classified, lang: str, top_k: int, pol: Policy) -> dict:
    """The image's answer with its raw top ``top_k`` predictions and the policy's verdict (made
    from the top ``STORED_TOP_K``, as the library's tags are)."""
    out = r.to_dict(lang)
    if r.result.ok:
        preds = r.result.predictions
        out["predictions"] = out["predictions"][:top_k]
        tag = pol.decide([(p.wnid, p.score) for p in preds])
        out["verdict"] = verdict(tag, lang, [p.wnid for p in preds[:top_k]])
    return out


def _without_none(result: dict) -> dict:
    """What ``response_model_exclude_none`` would leave (an image that failed has no size)."""
    return {k: v for k, v in result.items() if v is not None}


@router.get("/models", response_model=ModelsResponse, summary="List models")
async def list_models(ctx: Annotated[AppContext, Depends(get_context)]) -> dict:
    """Every model wanwu knows: availability (with how to get missing weights), published
    accuracy, input size, and whether this server has it in memory."""
    return {"default": ctx.config.model, "models": ctx.service.pool.describe()}


async def classify(request: Request, top_k: TopK = None, model: ModelName = None, lang: LangQuery = None) -> Response:
    """Top-k ImageNet classes for each uploaded image, with timings in milliseconds. Each
    prediction's `label` is in the language asked for (`lang`, else `Accept-Language`), with
    `label_en` and `label_zh` beside it. `predictions` are the model's raw answer; `verdict` is
    the tag policy's headline (a class, a label group, or none when unsure; sensitive classes
    such as primates need a much higher bar), the same rule as the photo library's tags.

    One image that fails answers with its own status (415, 422, 413) and an `error` object.
    With several files, the answer is 200 and each failed image carries an `error` object in
    `results` instead of `predictions`; only when every image fails does the status become the
    first image's error status (the body then holds `error` and `results`).
    """
    ctx = context_of(request)
    lang = response_language(request, ctx, lang)
    clf = await ctx.service.classifier(model)  # unknown / unavailable model: before reading the body
    k = top_k or ctx.config.top_k
    pol = policy(clf.model_name, clf.engine.precision, ctx.config.tag_confidence)
    run_k = max(k, STORED_TOP_K)  # the verdict reads the top 10; the answer shows the top k
    uploads = await read_uploads(request, max_files=ctx.config.max_files)
    results = list(
        await asyncio.gather(
            *(ctx.service.classify(u.data, model=clf.model_name, top_k=run_k, filename=u.filename) for u in uploads)
        )
    )
    del uploads
    _record(ctx, clf, results)
    failed = [r.result.error for r in results if r.result.error is not None]
    if failed and len(failed) == len(results):
        first = failed[0]
        body: dict[str, Any] = {"error": first.to_dict(lang)}
        if len(results) > 1:
            body["results"] = [r.to_dict(lang) for r in results]
        return JSONResponse(body, status_code=first.http_status, headers=_VARY)
    # built here, not by FastAPI from ``response_model`` (which stays for the schema): validating
    # our own dict against it again cost ~0.4 ms a request (measured on cache hits)
    return JSONResponse(_envelope(clf, results, lang, k, pol), headers=_VARY)


# a QueryRoute: served without FastAPI's dependency solving, the hottest route of the server
router.add_api_route(
    "/classify",
    classify,
    methods=["POST"],
    route_class_override=QueryRoute,
    response_model=ClassifyResponse,
    response_model_exclude_none=True,
    summary="Classify images",
    responses=_ERRORS,
    openapi_extra=_CLASSIFY_BODY,
)
_VARY = {"Vary": "Accept-Language"}  # the labels follow the header when ?lang= is absent


def _record(ctx: AppContext, clf: Classifier, results: list[Classified]) -> None:
    """Images answered and failed (stage times are recorded by the stage runner)."""
    for r in results:
        if r.result.error is not None:
            ctx.metrics.errors.labels(r.result.error.code).inc()
        else:
            ctx.metrics.count_images(clf.model_name)


_EXPLAIN_ERRORS = error_responses(
    *UPLOAD_ERRORS,
    *MODEL_ERRORS,
    *IMAGE_ERRORS,
    *SERVICE_ERRORS,
    UnknownLabelError,
    AmbiguousLabelError,
    UnsupportedLanguageError,
    model=ErrorResponse,
    **RETRY_NOTE,
)
_EXPLAIN_PNG: dict[int | str, dict[str, Any]] = {
    "200": {
        "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
        "description": "with `Accept: image/png`: the overlay of the one image",
    }
}
Target = Annotated[
    str | None,
    Query(description="class to explain: index, wnid, or name in English or Chinese; default: the top-1 class"),
]


@router.post(
    "/explain",
    response_model=ExplainResponse,
    response_model_exclude_none=True,
    summary="Explain a prediction",
    responses={**_EXPLAIN_ERRORS, **_EXPLAIN_PNG},
    openapi_extra=_CLASSIFY_BODY,
)
async def explain(
    request: Request,
    ctx: Annotated[AppContext, Depends(get_context)],
    lang: RequestLang,
    top_k: TopK = None,
    model: ModelName = None,
    target: Target = None,
):
    """Where in each image the model found a class (a class activation map): the predictions,
    the class explained and `heatmap`, a grid of values 0-1 over the whole image. Takes the
    same bodies and limits as `/classify`, and fails the same way for bad images.

    With `Accept: image/png` (one image only) the answer is the overlay instead: the photo with
    the heatmap in viridis, greyed outside the model's crop, and a legend with class and score.
    """
    index = None if target is None else resolve_target(target)  # before the body: a typo costs no upload
    wants_png = "image/png" in request.headers.get("accept", "")
    clf = await ctx.service.classifier(model)
    k = top_k or ctx.config.top_k
    uploads = await read_uploads(request, max_files=ctx.config.max_files)
    if wants_png and len(uploads) > 1:
        raise BadRequestError(f"an overlay (Accept: image/png) is for one image; this request has {len(uploads)}")
    names = [u.filename for u in uploads]
    answers = list(
        await asyncio.gather(
            *(
                ctx.service.explain(u.data, model=clf.model_name, top_k=k, target=index, filename=u.filename)
                for u in uploads
            )
        )
    )
    del uploads
    failed = [a for a in answers if isinstance(a, ImageInputError)]
    for a in answers:
        if isinstance(a, ImageInputError):
            ctx.metrics.errors.labels(a.code).inc()
        else:
            ctx.metrics.explained.labels(clf.model_name).inc()
    results = [
        {"filename": name, "error": a.to_dict(lang)} if isinstance(a, ImageInputError) else a.to_dict(lang=lang)
        for name, a in zip(names, answers)
    ]
    if failed and len(failed) == len(answers):
        body: dict[str, Any] = {"error": failed[0].to_dict(lang)}
        if len(answers) > 1:
            body["results"] = results
        return JSONResponse(body, status_code=failed[0].http_status)
    if wants_png:
        from ..overlay import OVERLAY_MAX_SIDE, overlay_png

        png = await ctx.service.run_cpu(overlay_png, answers[0], OVERLAY_MAX_SIDE, lang)
        return Response(png, media_type="image/png")
    return envelope(clf, results)
