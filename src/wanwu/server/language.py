"""The language of class names in an answer: ``?lang=zh|en`` if given (``zh-CN`` and the like
too; anything else is a 400), else the ``Accept-Language`` header, else the server's
``WANWU_LANG``, else English. The server's locale is not used: it says nothing about its clients.
The v2 protocol's classification extension stays English (clients parse it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from ..errors import UnsupportedLanguageError
from ..labels import DEFAULT_LANG, normalize_lang
from .context import AppContext, context_of, get_context

LangQuery = Annotated[
    str | None,
    Query(
        description="language of `label`: en or zh (zh-CN etc. also work); default: the Accept-Language header, "
        "else the server's WANWU_LANG, else en. `label_en` and `label_zh` are always there.",
        examples=["zh"],
        # documented (and what contract tests generate), checked by ``normalize_lang`` for a clear 400
        json_schema_extra={"pattern": "^([eE][nN]|[zZ][hH])([-_][A-Za-z0-9]+)*$"},
    ),
]


def response_language(request: Request, ctx: AppContext, lang: str | None) -> str:
    """``en`` or ``zh`` for this request, given its ``?lang=`` (raises
    ``UnsupportedLanguageError`` for ``?lang=fr``)."""
    if lang is not None:
        if not lang.strip():
            raise UnsupportedLanguageError("lang= is empty: use lang=en or lang=zh, or leave it out")
        return normalize_lang(lang, strict=True)
    fallback = ctx.config.lang or DEFAULT_LANG
    return normalize_lang(request.headers.get("accept-language"), default=fallback)


async def request_lang(
    request: Request, ctx: Annotated[AppContext, Depends(get_context)], lang: LangQuery = None
) -> str:
    """``response_language`` as a FastAPI dependency; ``async`` so that FastAPI runs it on the
    event loop, not its thread pool."""
    return response_language(request, ctx, lang)


RequestLang = Annotated[str, Depends(request_lang)]


def error_language(request: Request) -> str:
    """The language of an error's message: the request's (as ``response_language`` decides),
    English when that cannot be told (the error is a ``lang=`` no language has, say)."""
    try:
        return response_language(request, context_of(request), request.query_params.get("lang"))
    except (UnsupportedLanguageError, AttributeError):  # AttributeError: an app without a context
        return DEFAULT_LANG
