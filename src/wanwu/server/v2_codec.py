"""Open Inference Protocol v2 wire format: inference requests and responses as JSON, with
Triton's binary tensor extension (``Inference-Header-Content-Length``: a JSON header, then
raw tensor bytes; BYTES elements as 4-byte little-endian length + bytes). No FastAPI here."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InvalidTensorError

NUMERIC_DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_BASE64 = re.compile(r"[A-Za-z0-9+/\-_]+={0,2}")


@dataclass
class InputTensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray | list[bytes]  # numeric array shaped ``shape``, or BYTES elements in row-major order
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class RequestedOutput:
    name: str
    classification: int = 0  # Triton classification extension: top-k "score:index:label" strings
    binary: bool = False


@dataclass
class InferRequest:
    id: str | None
    inputs: list[InputTensor]
    outputs: list[RequestedOutput] | None  # None: all outputs, with default settings
    binary_output: bool = False  # request-level ``binary_data_output``
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class OutputTensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray | list[bytes]
    binary: bool = False


def _fail(message: str) -> InvalidTensorError:
    return InvalidTensorError(message)


def serialize_bytes(items: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(b)) + b for b in items)


def deserialize_bytes(buf: bytes | memoryview, expected: int, name: str) -> list[bytes]:
    view = memoryview(buf)
    out: list[bytes] = []
    pos = 0
    while pos < len(view):
        if pos + 4 > len(view):
            raise _fail(f"input {name!r}: binary BYTES data is cut inside an element length")
        (n,) = struct.unpack_from("<I", view, pos)
        pos += 4
        if pos + n > len(view):
            raise _fail(f"input {name!r}: a BYTES element declares {n} bytes but the data ends first")
        out.append(bytes(view[pos : pos + n]))
        pos += n
    if len(out) != expected:
        raise _fail(f"input {name!r}: shape holds {expected} elements but the binary data has {len(out)}")
    return out


def _flatten(data: Any) -> list:
    if not isinstance(data, list):
        return [data]
    flat: list = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def _json_bytes_element(item: Any, force_base64: bool, name: str) -> bytes:
    """A JSON string is an element's bytes (UTF-8, as Triton reads it) unless it is base64,
    which is detected (or forced with the ``content_type: base64`` input parameter)."""
    if isinstance(item, dict) and isinstance(item.get("b64"), str):  # TF-Serving style {"b64": ...}
        item, force_base64 = item["b64"], True
    if not isinstance(item, str):
        raise _fail(f"input {name!r}: BYTES elements in JSON must be strings (base64 for binary data)")
    compact = "".join(item.split())
    if force_base64 or (len(compact) >= 16 and _BASE64.fullmatch(compact)):
        try:
            padded = compact + "=" * (-len(compact) % 4)
            if "-" in compact or "_" in compact:
                return base64.urlsafe_b64decode(padded)
            return base64.b64decode(padded, validate=True)
        except (binascii.Error, ValueError):
            if force_base64:
                raise _fail(f"input {name!r}: an element is not valid base64") from None
    return item.encode("utf-8")


def _shape(raw: Any, name: str) -> tuple[int, ...]:
    if not isinstance(raw, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in raw):
        raise _fail(f"input {name!r}: shape must be a list of non-negative integers, got {raw!r}")
    return tuple(raw)


def _decode_input(raw: Any, binary: memoryview, offset: int) -> tuple[InputTensor, int]:
    if not isinstance(raw, dict):
        raise _fail("each entry of 'inputs' must be an object with name, shape, datatype and data")
    name = raw.get("name")
    if not isinstance(name, str):
        raise _fail("an input has no 'name'")
    datatype = raw.get("datatype")
    if datatype != "BYTES" and datatype not in NUMERIC_DTYPES:
        raise _fail(f"input {name!r}: unknown datatype {datatype!r}")
    shape = _shape(raw.get("shape"), name)
    count = math.prod(shape)
    params = raw.get("parameters") or {}
    if not isinstance(params, dict):
        raise _fail(f"input {name!r}: 'parameters' must be an object")
    size = params.get("binary_data_size")

    if size is not None:  # binary tensor extension
        if not isinstance(size, int) or size < 0 or offset + size > len(binary):
            left = len(binary) - offset
            raise _fail(f"input {name!r}: binary_data_size {size!r} does not fit the {left} binary bytes left")
        chunk = binary[offset : offset + size]
        offset += size
        if datatype == "BYTES":
            return InputTensor(name, datatype, shape, deserialize_bytes(chunk, count, name), params), offset
        dtype = NUMERIC_DTYPES[datatype]
        if size != count * dtype.itemsize:
            need = count * dtype.itemsize
            raise _fail(f"input {name!r}: shape {list(shape)} of {datatype} needs {need} bytes, got {size}")
        array = np.frombuffer(chunk, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=False)
        return InputTensor(name, datatype, shape, array, params), offset

    if "data" not in raw:
        raise _fail(f"input {name!r} has neither 'data' nor parameters.binary_data_size")
    if datatype == "BYTES":
        flat = _flatten(raw["data"])
        if len(flat) != count:
            raise _fail(f"input {name!r}: shape {list(shape)} holds {count} elements but data has {len(flat)}")
        force = params.get("content_type") == "base64"
        return InputTensor(name, datatype, shape, [_json_bytes_element(x, force, name) for x in flat], params), offset
    try:  # nested or flat lists; numpy's C path (a ragged nesting raises ValueError)
        array = np.asarray(raw["data"], dtype=NUMERIC_DTYPES[datatype].newbyteorder("=")).ravel()
    except (ValueError, OverflowError, TypeError) as exc:
        raise _fail(f"input {name!r}: data does not convert to {datatype}: {exc}") from None
    if array.size != count:
        raise _fail(f"input {name!r}: shape {list(shape)} holds {count} elements but data has {array.size}")
    array = array.reshape(shape)
    return InputTensor(name, datatype, shape, array, params), offset


def _decode_output(raw: Any, binary_default: bool) -> RequestedOutput:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise _fail("each entry of 'outputs' must be an object with a 'name'")
    params = raw.get("parameters") or {}
    if not isinstance(params, dict):
        raise _fail(f"output {raw['name']!r}: 'parameters' must be an object")
    k = params.get("classification", 0)
    if not isinstance(k, int) or isinstance(k, bool) or k < 0:
        raise _fail(f"output {raw['name']!r}: classification must be a non-negative integer, got {k!r}")
    binary = params.get("binary_data", binary_default)
    return RequestedOutput(raw["name"], k, bool(binary))


def decode_request(body: bytes, json_length: int | None = None) -> InferRequest:
    """Parse an inference request; ``json_length`` is the ``Inference-Header-Content-Length``."""
    if json_length is None:
        json_length = len(body)
    if not 0 < json_length <= len(body):
        raise _fail(f"Inference-Header-Content-Length {json_length} does not fit the {len(body)}-byte body")
    try:
        header = json.loads(bytes(body[:json_length]))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _fail(f"the request is not valid JSON: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("inputs"), list) or not header["inputs"]:
        raise _fail("the request needs an 'inputs' list with at least one tensor")
    params = header.get("parameters") or {}
    if not isinstance(params, dict):
        raise _fail("'parameters' must be an object")
    binary = memoryview(body)[json_length:]
    inputs, offset = [], 0
    for raw in header["inputs"]:
        tensor, offset = _decode_input(raw, binary, offset)
        inputs.append(tensor)
    if offset != len(binary):
        raise _fail(f"{len(binary) - offset} bytes of binary data after the JSON are not claimed by any input")
    binary_output = bool(params.get("binary_data_output", False))
    outputs_raw = header.get("outputs")
    if outputs_raw is not None and not isinstance(outputs_raw, list):
        raise _fail("'outputs' must be a list")
    outputs = [_decode_output(o, binary_output) for o in outputs_raw] if outputs_raw else None
    request_id = header.get("id")
    return InferRequest(str(request_id) if request_id is not None else None, inputs, outputs, binary_output, params)


def encode_response(
    model_name: str, model_version: str, request_id: str | None, outputs: list[OutputTensor]
) -> tuple[bytes, dict[str, str]]:
    """Response body and extra headers (``Inference-Header-Content-Length`` when any output is binary)."""
    described, blobs = [], []
    for out in outputs:
        entry: dict[str, Any] = {"name": out.name, "datatype": out.datatype, "shape": list(out.shape)}
        if out.datatype == "BYTES":
            items = list(out.data)  # type: ignore[arg-type]
            if out.binary:
                blob = serialize_bytes(items)
                entry["parameters"] = {"binary_data_size": len(blob)}
                blobs.append(blob)
            else:
                entry["data"] = [b.decode("utf-8", "replace") for b in items]
        else:
            array = np.asarray(out.data, dtype=NUMERIC_DTYPES[out.datatype])
            if out.binary:
                blob = array.tobytes()
                entry["parameters"] = {"binary_data_size": len(blob)}
                blobs.append(blob)
            else:
                entry["data"] = array.ravel().tolist()
        described.append(entry)
    response: dict[str, Any] = {"model_name": model_name, "model_version": model_version, "outputs": described}
    if request_id is not None:
        response["id"] = request_id
    header = json.dumps(response, separators=(",", ":")).encode()
    if not blobs:
        return header, {"Content-Type": "application/json"}
    return header + b"".join(blobs), {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(header)),
    }
