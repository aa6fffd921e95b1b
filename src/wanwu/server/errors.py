"""Errors only an HTTP request can cause, how every error becomes a JSON response, and the
OpenAPI error tables generated from the error classes (``error_responses``).

The JSON API and the TorchServe routes answer ``{"error": {"code", "message"}}``; the v2
routes answer ``{"error": "message"}`` as the Open Inference Protocol says. Errors with a
5xx status also carry the request id, which the log line repeats. A ``WanwuError``'s message is
in the request's language (``language.error_language``: ``?lang=``, else ``Accept-Language``,
which the page sets to its own language); FastAPI's validation and routing messages stay English. Domain errors (images,
models, settings, a busy batcher) live in ``wanwu.errors``.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match, Mount

from ..errors import (
    BusyError,
    CorruptImageError,
    EmptyImageError,
    ImageInputError,
    ModelUnavailableError,
    NotAnImageError,
    TooManyPixelsError,
    TruncatedImageError,
    UnknownModelError,
    UnsupportedFormatError,
    WanwuError,
    WeightsError,
)
from .language import error_language

log = logging.getLogger("wanwu.server")


class RequestTooLargeError(WanwuError):
    code = "payload_too_large"
    http_status = 413
    summary = "body over --max-upload-mb"
    summary_zh = "请求体超过 --max-upload-mb"


class TooManyFilesError(WanwuError):
    code = "too_many_files"
    http_status = 413
    summary = "more images than --max-files"
    summary_zh = "图像数超过 --max-files"


class NoFileError(WanwuError):
    code = "no_file"
    http_status = 422
    summary = "no file field"
    summary_zh = "没有 file 字段"


class UnsupportedMediaTypeError(WanwuError):
    code = "unsupported_media_type"
    http_status = 415
    summary = "a JSON or text body where an image was expected"
    summary_zh = "应为图像，却收到了 JSON 或文本"


class BadRequestError(WanwuError):
    code = "bad_request"
    http_status = 400
    summary = "malformed body"
    summary_zh = "请求体格式有误"


class InvalidRequestError(WanwuError):
    """A query/path parameter or JSON field FastAPI's validation refused (v2 answers 400)."""

    code = "invalid_request"
    http_status = 422
    summary = "bad parameter"
    summary_zh = "参数有误"


class InvalidTensorError(WanwuError):
    """A v2 inference request whose tensors do not fit the model (name, datatype, shape, data)."""

    code = "invalid_tensor"
    http_status = 400
    summary = "a tensor name, datatype or shape the model does not take"
    summary_zh = "模型不接受的张量名称、数据类型或形状"


class BodyTimeoutError(WanwuError):
    code = "body_timeout"
    http_status = 408
    summary = "the body arrived too slowly, see --body-timeout"
    summary_zh = "请求体传送太慢，见 --body-timeout"


class RequestTimeoutError(WanwuError):
    code = "timeout"
    http_status = 503
    summary = "over --request-timeout"
    summary_zh = "超过了 --request-timeout"


class ShuttingDownError(WanwuError):
    code = "shutting_down"
    http_status = 503
    summary = "shutting down"
    summary_zh = "服务器正在关闭"


class UIMissingError(WanwuError):
    code = "ui_missing"
    http_status = 404
    summary = "the web UI is not installed"
    summary_zh = "未安装网页界面"


# what the routes can raise, by kind (each route lists the kinds that apply to it)
IMAGE_ERRORS = (
    NotAnImageError,
    UnsupportedFormatError,
    EmptyImageError,
    TruncatedImageError,
    CorruptImageError,
    TooManyPixelsError,
)
MODEL_ERRORS = (UnknownModelError, ModelUnavailableError, WeightsError)
BODY_ERRORS = (BadRequestError, BodyTimeoutError, RequestTooLargeError, TooManyFilesError)
UPLOAD_ERRORS = (*BODY_ERRORS, UnsupportedMediaTypeError, NoFileError, InvalidRequestError)
SERVICE_ERRORS = (BusyError, RequestTimeoutError, ShuttingDownError)
RETRY_NOTE = {"e503": "see Retry-After"}


def error_responses(
    *errors: type[WanwuError], model: type[BaseModel] | None = None, **notes: str
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a route that can raise ``errors``: per HTTP status, the
    summaries and codes of its errors (``notes``, e.g. ``e503="see Retry-After"``, add a
    remark to a status). The one place a route's documented error statuses come from."""
    by_status: dict[int, list[str]] = {}
    for error in errors:
        text = f"{error.summary} (`{error.code}`)"
        if text not in by_status.setdefault(error.http_status, []):
            by_status[error.http_status].append(text)
    out: dict[int | str, dict[str, Any]] = {}
    for status in sorted(by_status):
        description = "; ".join(by_status[status])
        if f"e{status}" in notes:
            description += f"; {notes[f'e{status}']}"
        out[status] = {"description": description, **({"model": model} if model is not None else {})}
    return out


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    431: "headers_too_large",
    503: "unavailable",
}


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def is_v2(request: Request) -> bool:
    path = request.url.path
    return path == "/v2" or path.startswith("/v2/")


def error_response(
    request: Request, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The one place an error body is shaped (and counted in the metrics)."""
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.errors.labels(code).inc()
    if is_v2(request):
        return JSONResponse({"error": message}, status_code=status, headers=headers)
    body: dict = {"code": code, "message": message}
    if status >= 500:
        body["request_id"] = request_id_of(request)
    return JSONResponse({"error": body}, status_code=status, headers=headers)


async def _wanwu_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, WanwuError)
    message = exc.text(error_language(request))
    if exc.http_status == 503:  # busy or shutting down: a client may retry shortly
        return error_response(request, 503, exc.code, message, headers={"Retry-After": "1"})
    if exc.http_status >= 500:
        log.error(
            "%s %s failed [request_id=%s]: %s", request.method, request.url.path, request_id_of(request), exc.message
        )
    headers = None
    if exc.http_status in (408, 413) and not isinstance(exc, ImageInputError):
        # raised while the body was still arriving: the rest of it is not read, so the
        # connection cannot carry another request (its leftover bytes would be parsed as one)
        headers = {"Connection": "close"}
    return error_response(request, exc.http_status, exc.code, message, headers=headers)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ()) if x not in ("body",)]
        if len(loc) > 1 and loc[0] in ("query", "path", "header"):
            where = f"{loc[0]} parameter {'.'.join(loc[1:])}"
        else:
            where = ".".join(loc)
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid")))
    return "; ".join(parts) or "invalid request"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    status = 400 if is_v2(request) else InvalidRequestError.http_status  # v2: every malformed request is a 400
    return error_response(request, status, InvalidRequestError.code, _describe_validation(exc))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status == 404:
        message = f"nothing at {request.url.path}; the API is described at /docs and /openapi.json"
    elif status == 405:
        allowed = _allowed_methods(request) or (exc.headers or {}).get("Allow", "")
        message = f"{request.method} is not allowed on {request.url.path}" + (f"; use {allowed}" if allowed else "")
        return error_response(request, 405, "method_not_allowed", message, headers={"Allow": allowed})
    else:
        message = str(exc.detail)
    return error_response(request, status, _HTTP_CODES.get(status, "http_error"), message, headers=exc.headers)


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette's 405 names only the methods of
    the first route that matched the path, e.g. PUT but not POST for /predictions/{model})."""
    allowed = []
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
        scope = {**request.scope, "method": method}
        routes = (r for r in request.app.router.routes if not isinstance(r, Mount))  # a mount takes any method
        if any(route.matches(scope)[0] == Match.FULL for route in routes):
            allowed.append(method)
    return ", ".join(allowed)


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The client hung up while sending: nobody to answer, nothing to log as an error."""
    log.debug("%s %s: client disconnected [request_id=%s]", request.method, request.url.path, request_id_of(request))
    return Response(status_code=499)  # nginx's "client closed request", for the access log and metrics


def install_error_handlers(app: FastAPI) -> None:
    """JSON errors for wanwu's own errors, FastAPI's validation errors and routing errors.
    Unexpected exceptions are turned into 500s by ``RequestContextMiddleware``."""
    app.add_exception_handler(WanwuError, _wanwu_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
