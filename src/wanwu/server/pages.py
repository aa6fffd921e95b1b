"""The web UI (``GET /`` and ``/static/*`` from the package) and ``/docs``: an API reference
rendered on the server from the OpenAPI description, so it needs no CDN and no script."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from .errors import UIMissingError

STATIC_DIR = Path(__file__).parent / "static"
router = APIRouter(include_in_schema=False)
_NO_CACHE = {"Cache-Control": "no-cache"}  # revalidate (ETag) so an upgraded UI shows at once


@router.get("/")
async def index() -> FileResponse:
    page = STATIC_DIR / "index.html"
    if not page.is_file():
        raise UIMissingError(f"the web UI is not installed ({page} is missing); the API works: see /docs")
    return FileResponse(page, media_type="text/html; charset=utf-8", headers=_NO_CACHE)


@router.get("/favicon.ico")
async def favicon() -> Response:
    icon = STATIC_DIR / "favicon.svg"
    if not icon.is_file():
        return Response(status_code=204)
    return FileResponse(icon, media_type="image/svg+xml")


_DOCS_CSS = """
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2330;background:#fff}
@media (prefers-color-scheme:dark){body{color:#e6e8ee;background:#14161c}code,pre{background:#232733!important}}
h1{margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #8884}
.op{margin:1.2rem 0;padding-left:.8rem;border-left:3px solid #4a7dff}
.m{display:inline-block;min-width:4.2rem;font-weight:700;font-family:ui-monospace,monospace}
code,pre{font-family:ui-monospace,monospace;background:#f2f4f8;border-radius:4px;padding:.1rem .3rem}
pre{padding:.6rem;overflow:auto;white-space:pre-wrap}table{border-collapse:collapse}
td,th{padding:.15rem .6rem;text-align:left;vertical-align:top}
"""

_EXAMPLES = """curl -F file=@cat.jpg '{base}/api/v1/classify?top_k=3'
curl -F file=@a.jpg -F file=@b.png {base}/api/v1/classify
curl --data-binary @cat.jpg -H 'X-Filename: cat.jpg' {base}/api/v1/classify
curl -T cat.jpg {base}/predictions/efficientnet_lite0
curl {base}/v2/models/efficientnet_lite0"""


@router.get("/docs/style.css")
async def docs_css() -> Response:
    return Response(_DOCS_CSS, media_type="text/css")


def _render_operation(path: str, method: str, op: dict[str, Any]) -> str:
    e = html.escape
    title = f'<span class="m">{e(method.upper())}</span> <code>{e(path)}</code> — {e(op.get("summary", ""))}'
    parts = [f'<div class="op"><p>{title}</p>']
    if op.get("description"):
        parts.append(f"<pre>{e(op['description'].strip())}</pre>")
    params = op.get("parameters") or []
    if params:
        rows = "".join(
            f"<tr><td><code>{e(p['name'])}</code></td><td>{e(p.get('in', ''))}</td>"
            f"<td>{'required' if p.get('required') else 'optional'}</td><td>{e(p.get('description', ''))}</td></tr>"
            for p in params
        )
        parts.append(f"<table>{rows}</table>")
    body = op.get("requestBody")
    if body:
        types = ", ".join(body.get("content", {}))
        parts.append(f"<p>Body: {e(types)}. {e(body.get('description', ''))}</p>")
    responses = (op.get("responses") or {}).items()
    codes = ", ".join(f"{e(str(code))} {e(r.get('description', ''))}" for code, r in responses)
    if codes:
        parts.append(f"<p>Responses: {codes}</p>")
    parts.append("</div>")
    return "".join(parts)


def render_docs(schema: dict[str, Any], base_url: str = "http://127.0.0.1:8080") -> str:
    """The OpenAPI description as one self-contained HTML page, grouped by tag; the examples
    use ``base_url``, the address the page was asked for."""
    e = html.escape
    groups: dict[str, list[str]] = {}
    for path, item in schema.get("paths", {}).items():
        for method, op in item.items():
            tag = (op.get("tags") or ["Other"])[0]
            groups.setdefault(tag, []).append(_render_operation(path, method, op))
    info = schema.get("info", {})
    sections = "".join(f"<h2>{e(tag)}</h2>{''.join(ops)}" for tag, ops in groups.items())
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{e(info.get("title", "API"))} API</title><link rel="stylesheet" href="/docs/style.css"></head><body>'
        f"<h1>{e(info.get('title', 'API'))} API <small>{e(info.get('version', ''))}</small></h1>"
        f"<p>{e(info.get('description', ''))}</p>"
        '<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> · Web UI: <a href="/">/</a></p>'
        f"<h2>Examples</h2><pre>{e(_EXAMPLES.format(base=base_url.rstrip('/')))}</pre>{sections}</body></html>"
    )


def install_pages(app: FastAPI) -> None:
    """``/``, ``/docs`` and the static files of the UI."""

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        return HTMLResponse(render_docs(request.app.openapi(), str(request.base_url)))

    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")
