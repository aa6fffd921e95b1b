"""Open Inference Protocol v2 (KServe / Triton HTTP/REST), so existing clients and probes work.

Each model declares two alternative inputs, a request sends exactly one of them: ``image``
BYTES ``[-1]`` (encoded images: JPEG, PNG, ... as binary tensor data, or base64 / raw strings
in JSON; decoded by the server) and ``input`` FP32 ``[-1, 3, S, S]`` (preprocessed, as
``wanwu.imaging.preprocess`` makes it). Both are marked ``"optional": true`` in the metadata
and the config, as Triton marks inputs a request may leave out. The server goes by the
datatype, not the name. One output, ``probabilities`` FP32 ``[-1, 1000]``. Extensions: Triton's
``binary_tensor_data`` and ``classification`` (``"parameters": {"classification": k}`` on
the requested output gives ``"score:index:label"`` strings), and ``model_repository``
(index and load). Errors are ``{"error": "message"}``.
"""

from __future__ import annotations

import zlib
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from .. import __version__
from ..engines import get_engine
from ..errors import UnknownModelError
from ..labels import imagenet_classes
from ..models import get_spec
from ..pipeline import Classifier
from .context import AppContext, get_context
from .errors import (
    BODY_ERRORS,
    IMAGE_ERRORS,
    MODEL_ERRORS,
    RETRY_NOTE,
    SERVICE_ERRORS,
    BadRequestError,
    InvalidTensorError,
    RequestTooLargeError,
    TooManyFilesError,
    error_responses,
)
from .limits import too_large_message
from .schemas import V2ErrorResponse
from .uploads import read_body
from .v2_codec import InferRequest, InputTensor, OutputTensor, decode_request, encode_response

_UNKNOWN = error_responses(UnknownModelError, model=V2ErrorResponse, e404="or a version other than 1")
_NOT_READY: dict[int | str, dict[str, Any]] = {400: {"description": "not ready"}}
_INFER_ERRORS = error_responses(
    *BODY_ERRORS,
    InvalidTensorError,
    *MODEL_ERRORS,
    *IMAGE_ERRORS,
    *SERVICE_ERRORS,
    model=V2ErrorResponse,
    e400="or any other malformed request",
    e404="or a version other than 1",
    **RETRY_NOTE,
)
router = APIRouter(prefix="/v2", tags=["Open Inference Protocol v2"])
Ctx = Annotated[AppContext, Depends(get_context)]

INPUT_NAME = "input"  # FP32, preprocessed
IMAGE_INPUT_NAME = "image"  # BYTES, encoded images
OUTPUT_NAME = "probabilities"
MODEL_VERSION = "1"
EXTENSIONS = ["binary_tensor_data", "classification", "model_repository"]


async def _version(request: Request) -> str | None:
    """The ``/versions/{version}`` part of the URL, if any (those routes stay out of the schema)."""
    return request.path_params.get("version")


def _check_version(name: str, version: str | None) -> None:
    if version is not None and version != MODEL_VERSION:
        raise UnknownModelError(f"model {name!r} has no version {version!r}; the only version is {MODEL_VERSION}")


Version = Annotated[str | None, Depends(_version)]


def _metadata(name: str, engine: str) -> dict:
    spec = get_spec(name)
    size = spec.input_size
    return {
        "name": spec.name,
        "versions": [MODEL_VERSION],
        "platform": get_engine(engine).v2_platform,
        "inputs": [  # alternatives: a request sends one of them
            {"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, 3, size, size], "optional": True},
            {"name": IMAGE_INPUT_NAME, "datatype": "BYTES", "shape": [-1], "optional": True},
        ],
        "outputs": [{"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1, spec.num_classes]}],
    }


# -- server ----------------------------------------------------------------------------
@router.get("", summary="Server metadata")
async def server_metadata() -> dict:
    return {"name": "wanwu", "version": __version__, "extensions": EXTENSIONS}


@router.get("/health/live", summary="Liveness (200 live)")
async def live() -> dict:
    return {"live": True}


@router.get("/health/ready", summary="Readiness (200 ready, 400 not ready)", responses=_NOT_READY)
async def ready(ctx: Ctx) -> JSONResponse:
    """Ready once the default model is loaded and warmed up; not ready while shutting down."""
    is_ready = ctx.service.ready
    return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 400)


# -- models ----------------------------------------------------------------------------
@router.get("/models/{name}", summary="Model metadata", responses=_UNKNOWN)
@router.get("/models/{name}/versions/{version}", include_in_schema=False)
async def model_metadata(ctx: Ctx, name: str, version: Version) -> dict:
    _check_version(name, version)
    return _metadata(name, ctx.config.engine)


@router.get(
    "/models/{name}/ready", summary="Model readiness (200 ready, 400 not ready)", responses={**_UNKNOWN, **_NOT_READY}
)
@router.get("/models/{name}/versions/{version}/ready", include_in_schema=False)
async def model_ready(ctx: Ctx, name: str, version: Version) -> JSONResponse:
    """A model is ready when it is in memory (models load on their first request, or
    explicitly through ``POST /v2/repository/models/{name}/load``)."""
    _check_version(name, version)
    get_spec(name)
    is_ready = ctx.service.ready and ctx.service.pool.is_loaded(name)
    return JSONResponse({"name": name, "ready": is_ready}, status_code=200 if is_ready else 400)


@router.get("/models/{name}/config", summary="Model configuration (Triton style)", responses=_UNKNOWN)
@router.get("/models/{name}/versions/{version}/config", include_in_schema=False)
async def model_config(ctx: Ctx, name: str, version: Version) -> dict:
    _check_version(name, version)
    spec = get_spec(name)
    engine = get_engine(ctx.config.engine)
    return {
        "name": spec.name,
        "platform": engine.v2_platform,
        "backend": engine.v2_backend,
        "max_batch_size": ctx.config.max_files,
        "input": [
            {
                "name": INPUT_NAME,
                "data_type": "TYPE_FP32",
                "format": "FORMAT_NCHW",
                "dims": [3, spec.input_size, spec.input_size],
                "optional": True,
            },
            {"name": IMAGE_INPUT_NAME, "data_type": "TYPE_STRING", "dims": [1], "optional": True},
        ],
        "output": [{"name": OUTPUT_NAME, "data_type": "TYPE_FP32", "dims": [spec.num_classes]}],
    }


@router.post("/repository/index", summary="Models and their state")
async def repository_index(ctx: Ctx) -> list[dict]:
    out = []
    for model in ctx.service.pool.describe():  # the JSON API's list: the same facts, the same reasons
        state = "READY" if model["loaded"] else ("UNAVAILABLE" if not model["available"] else "")
        entry = {"name": model["name"], "version": MODEL_VERSION, "state": state}
        if model["reason"]:
            entry["reason"] = model["reason"]
        out.append(entry)
    return out


@router.post(
    "/repository/models/{name}/load",
    summary="Load a model now",
    responses=error_responses(*MODEL_ERRORS, model=V2ErrorResponse),
)
async def repository_load(ctx: Ctx, name: str) -> dict:
    await ctx.service.classifier(name)
    return {}


# -- inference -------------------------------------------------------------------------
def _decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo ``Content-Encoding: gzip|deflate`` (as tritonclient may send), never past ``limit``."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        raise BadRequestError(f"Content-Encoding {encoding!r} is not supported; send gzip, deflate or none")
    inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadRequestError(f"the {encoding} body does not decompress: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise RequestTooLargeError(too_large_message(limit))
    return out


def _parse_request(body: bytes, encoding: str | None, limit: int, json_length: int | None) -> InferRequest:
    """Decompress and decode (CPU work: runs in a worker thread)."""
    return decode_request(_decompress(body, encoding, limit), json_length)


def _header_length(request: Request) -> int | None:
    raw = request.headers.get("inference-header-content-length")
    if raw is None:
        return None
    if not raw.strip().isdigit():
        raise InvalidTensorError(f"Inference-Header-Content-Length must be a byte count, got {raw!r}")
    return int(raw)


def _batch_size(n: int, ctx: AppContext) -> int:
    if n < 1:
        raise InvalidTensorError("the batch is empty; send at least one image")
    if n > ctx.config.max_files:
        raise TooManyFilesError(
            f"batch of {n} is over the limit of {ctx.config.max_files} images per request; split it, or "
            "start the server with a larger --max-files (WANWU_MAX_FILES)"
        )
    return n


async def _model_input(ctx: AppContext, clf: Classifier, tensor: InputTensor) -> np.ndarray:
    """The request's single input as a float32 NCHW batch."""
    s = clf.spec.input_size
    expected = f"FP32 [N,3,{s},{s}] (preprocessed) or BYTES [N] (encoded images)"
    if tensor.datatype == "BYTES":
        shape = tensor.shape
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
            raise InvalidTensorError(f"input {tensor.name!r}: BYTES shape must be [N] or [N,1], got {list(shape)}")
        images = tensor.data
        assert isinstance(images, list)
        _batch_size(len(images), ctx)
        names = [f"element {i} of {tensor.name!r}" for i in range(len(images))]
        return await ctx.service.prepare_images(clf, images, names)
    if tensor.datatype == "FP32":
        shape = tensor.shape
        if len(shape) != 4 or tuple(shape[1:]) != (3, s, s):
            raise InvalidTensorError(
                f"input {tensor.name!r}: shape {list(shape)} does not fit {clf.model_name}; expected {expected}"
            )
        _batch_size(shape[0], ctx)
        batch = tensor.data
        assert isinstance(batch, np.ndarray)
        if not np.isfinite(batch).all():
            raise InvalidTensorError(f"input {tensor.name!r} contains NaN or infinity")
        return batch
    raise InvalidTensorError(f"input {tensor.name!r}: datatype {tensor.datatype} is not accepted; expected {expected}")


def _check_outputs(req: InferRequest) -> None:
    for want in req.outputs or []:
        if want.name != OUTPUT_NAME:
            raise InvalidTensorError(f"unknown output {want.name!r}; the model has one output, {OUTPUT_NAME!r}")


def _model_outputs(req: InferRequest, probs: np.ndarray) -> list[OutputTensor]:
    requested = req.outputs or []
    if not requested:
        return [OutputTensor(OUTPUT_NAME, "FP32", probs.shape, probs, req.binary_output)]
    outputs = []
    classes = imagenet_classes()
    for want in requested:
        if not want.classification:
            outputs.append(OutputTensor(OUTPUT_NAME, "FP32", probs.shape, probs, want.binary))
            continue
        k = min(want.classification, probs.shape[1])
        top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        strings = [f"{probs[row, i]:f}:{i}:{classes[i].label}".encode() for row in range(len(probs)) for i in top[row]]
        outputs.append(OutputTensor(OUTPUT_NAME, "BYTES", (len(probs), k), strings, want.binary))
    return outputs


@router.post("/models/{name}/infer", summary="Inference", responses=_INFER_ERRORS)
@router.post("/models/{name}/versions/{version}/infer", include_in_schema=False)
async def infer(request: Request, ctx: Ctx, name: str, version: Version) -> Response:
    """One input: FP32 ``[N,3,S,S]`` preprocessed, or BYTES ``[N]`` encoded images (binary
    tensor data, or JSON strings: base64 is detected). Output ``probabilities``: FP32
    ``[N,1000]``, or BYTES ``[N,k]`` ``"score:index:label"`` with ``classification: k``."""
    _check_version(name, version)
    clf = await ctx.service.classifier(name)
    body = await read_body(request)
    json_length = _header_length(request)
    encoding = request.headers.get("content-encoding")
    req = await ctx.service.run_cpu(_parse_request, body, encoding, ctx.config.max_upload_bytes, json_length)
    del body
    if len(req.inputs) != 1:
        raise InvalidTensorError(f"{clf.model_name} takes exactly one input, got {len(req.inputs)}")
    _check_outputs(req)
    batch = await _model_input(ctx, clf, req.inputs[0])
    probs, _ = await ctx.service.probabilities(clf, batch)  # the forward pass is recorded by the stage runner
    ctx.metrics.count_images(clf.model_name, len(probs))
    content, headers = encode_response(clf.model_name, MODEL_VERSION, req.id, _model_outputs(req, probs))
    return Response(content, headers=headers)
