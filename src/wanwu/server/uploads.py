"""Reading uploaded images from a request: a multipart form (one or many file fields) or a
raw image body. Everything stays in memory (the body-size middleware bounds it); nothing is
written to disk, and client file names are only echoed back, never used as paths."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from .errors import BadRequestError, NoFileError, TooManyFilesError, UnsupportedMediaTypeError

DEFAULT_NAME = "upload"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class Upload:
    filename: str
    data: bytes


def clean_filename(raw: str | None, fallback: str = DEFAULT_NAME) -> str:
    """The last path component, without control or invisible format characters (NUL, newlines,
    the right-to-left overrides that disguise an extension), at most 255 characters. Only ever
    echoed back: never used as a path."""
    name = _CONTROL.sub("", (raw or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Zl", "Zp")).strip()
    return name[:255] or fallback


async def read_body(request: Request) -> bytes:
    """The whole body (the size limit is enforced while it streams in)."""
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
    return bytes(chunks)


def header_filename(raw: str | None) -> str:
    """The ``X-Filename`` header: HTTP hands it over as latin-1; clients send UTF-8 bytes."""
    if raw is None:
        return clean_filename(None)
    try:
        raw = raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    return clean_filename(raw)


def is_multipart(request: Request) -> bool:
    ctype, _ = parse_options_header(request.headers.get("content-type"))
    return ctype == b"multipart/form-data"


def _refuse_non_image_types(request: Request) -> None:
    """A JSON or text body is a client using the wrong API, not a broken image: say so.
    (Any other type is read as the image: curl --data-binary sends form-urlencoded.)"""
    ctype = parse_options_header(request.headers.get("content-type"))[0].decode("latin-1").lower()
    if ctype == "application/json" or ctype.endswith("+json") or ctype.startswith("text/"):
        raise UnsupportedMediaTypeError(
            f"a body of type {ctype} is not accepted here: send the image as a multipart form field "
            "(curl -F file=@photo.jpg) or as the raw body (curl --data-binary @photo.jpg); JSON "
            "tensors go to POST /v2/models/{name}/infer"
        )


async def read_uploads(request: Request, *, max_files: int, fields: tuple[str, ...] = ("file",)) -> list[Upload]:
    """Images of a multipart request (parts named one of ``fields``) or the raw body, whose
    file name comes from the ``X-Filename`` header."""
    if is_multipart(request):
        return await _read_multipart(request, max_files, fields)
    _refuse_non_image_types(request)
    return [Upload(header_filename(request.headers.get("x-filename")), await read_body(request))]


class _PartCollector:
    """python-multipart callbacks that keep the wanted parts in memory."""

    def __init__(self, max_files: int, fields: tuple[str, ...]):
        self.max_files = max_files
        self.fields = {f.encode() for f in fields}
        self.uploads: list[Upload] = []
        self.finished = False
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._data: bytearray | None = None
        self._filename = ""

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self._headers = {}
        self._data = None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[bytes(self._header_field).lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition"))
        if options.get(b"name") not in self.fields:
            return  # another form field: ignored, not kept
        if len(self.uploads) >= self.max_files:
            raise TooManyFilesError(
                f"too many files in one request (the limit is {self.max_files}); send them in "
                "several requests, or start the server with a larger --max-files (WANWU_MAX_FILES)"
            )
        raw = options.get(b"filename")
        self._filename = clean_filename(
            raw.decode("utf-8", "replace") if raw is not None else None, f"{DEFAULT_NAME}-{len(self.uploads) + 1}"
        )
        self._data = bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._data is not None:
            self._data += data[start:end]

    def on_part_end(self) -> None:
        if self._data is not None:
            self.uploads.append(Upload(self._filename, bytes(self._data)))
            self._data = None

    def on_end(self) -> None:
        self.finished = True


async def _read_multipart(request: Request, max_files: int, fields: tuple[str, ...]) -> list[Upload]:
    _, params = parse_options_header(request.headers.get("content-type"))
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadRequestError("multipart/form-data without a boundary; let your HTTP client build the form")
    collector = _PartCollector(max_files, fields)
    parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise BadRequestError(f"malformed multipart body: {exc}") from None
    if not collector.finished:
        raise BadRequestError("the multipart body ends before its closing boundary (upload cut off?)")
    if not collector.uploads:
        wanted = " or ".join(repr(f) for f in fields)
        raise NoFileError(
            f"the form has no file field named {wanted}; send the image as one, e.g. curl -F {fields[0]}=@photo.jpg ..."
        )
    return collector.uploads
