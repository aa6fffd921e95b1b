"""``QueryRoute`` serves a route without FastAPI's dependency solving: its answers, good and
bad, must be those of FastAPI's own route with the same signature, and its schema the same."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from wanwu.server.errors import install_error_handlers
from wanwu.server.routing import QueryRoute, query_model

Count = Annotated[int | None, Query(ge=1, le=10, description="how many")]
Name = Annotated[str | None, Query(pattern="^[a-z]+$")]
Ratio = Annotated[float, Query(gt=0)]


async def echo(request: Request, count: Count = None, name: Name = None, ratio: Ratio = 1.0) -> JSONResponse:
    return JSONResponse({"path": request.url.path, "count": count, "name": name, "ratio": ratio})


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    router = APIRouter(prefix="/api")
    router.add_api_route("/plain", echo, methods=["POST"])
    router.add_api_route("/fast", echo, methods=["POST"], route_class_override=QueryRoute)
    app.include_router(router)
    return app


@pytest.fixture(scope="module")
def pair() -> TestClient:
    return TestClient(_app())


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?count=3",
        "?count=3&name=abc&ratio=0.5",
        "?count=1&count=7",  # the last value wins, on both
        "?count=0",
        "?count=11",
        "?count=abc",
        "?count=2.5",
        "?name=ABC",
        "?ratio=0",
        "?ratio=x&count=99",  # two errors at once
        "?unknown=1",
    ],
)
def test_answers_match_fastapis_own_route(pair, query):
    plain = pair.post("/api/plain" + query)
    fast = pair.post("/api/fast" + query)
    assert fast.status_code == plain.status_code
    expected = plain.json()
    if plain.status_code == 200:
        expected["path"] = "/api/fast"
    assert fast.json() == expected


def test_a_bad_parameter_is_422_naming_it(pair):
    r = pair.post("/api/fast?count=0")
    assert r.status_code == 422
    assert "query parameter count" in r.json()["error"]["message"]


def test_schema_is_fastapis():
    spec = _app().openapi()["paths"]
    assert spec["/api/fast"]["post"]["parameters"] == spec["/api/plain"]["post"]["parameters"]


def test_only_query_parameters_are_accepted():
    async def with_body(request: Request, data: dict) -> JSONResponse:  # a body parameter
        return JSONResponse(data)

    async def without_request(count: Count = None) -> JSONResponse:
        return JSONResponse({})

    for endpoint in (with_body, without_request):
        with pytest.raises(TypeError):
            query_model(endpoint)
