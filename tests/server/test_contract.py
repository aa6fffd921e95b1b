"""Contract test: schemathesis generates requests from ``/openapi.json`` (valid and invalid
parameters, bodies, headers) and runs them against the app in process; every answer must be
free of 5xx and match the documented status codes, content types, headers and schemas.
Bounded: a few examples per operation, no shrinking, so it stays well under a minute."""

from __future__ import annotations

import anyio.to_thread
import pytest
from hypothesis import HealthCheck, Phase, settings

schemathesis = pytest.importorskip("schemathesis")

from wanwu.server import InferenceService, ServerConfig, create_app  # noqa: E402
from wanwu.server.model_pool import ModelPool  # noqa: E402

EXAMPLES = 25  # per operation (and per generation mode)
KEY = "contract-test-key"
_POOL = ModelPool(ServerConfig.from_env(environ={}))  # shared; a model loads on first use


def _schema(**changes):
    """The schema of a fresh app, built at collection (schemathesis's fixture-based loader does
    not work on pytest 9): cheap, as the model loads with the first request.

    schemathesis ends an app's lifespan after every test item, and a wanwu app's lifespan end
    is its shutdown (drained for good); so the app is served without its lifespan here, and
    its service started by hand."""
    config = ServerConfig.from_env(environ={}, **changes)
    service = InferenceService(config, pool=_POOL)
    app = create_app(config, service=service)

    async def without_lifespan(scope, receive, send):
        if scope["type"] == "lifespan":
            raise RuntimeError("no lifespan")  # refused before any message: "not supported"
        if not service.ready and scope["path"] != "/openapi.json":
            await anyio.to_thread.run_sync(service.start)
        await app(scope, receive, send)

    return schemathesis.openapi.from_asgi("/openapi.json", without_lifespan)


open_api = _schema()
keyed_api = _schema(api_key=KEY)
CONTRACT = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as found
    suppress_health_check=list(HealthCheck),
)


def _excluded(case) -> list:
    """An image body is "any bytes" to OpenAPI, so random bytes are schema-valid and yet rightly
    refused (415/422, documented): the positive-data check does not apply to those bodies."""
    return [schemathesis.checks.positive_data_acceptance] if case.operation.body else []


@open_api.parametrize()
@CONTRACT
def test_every_operation_keeps_its_contract(case):
    case.call_and_validate(excluded_checks=_excluded(case))


@keyed_api.parametrize()
@CONTRACT
def test_every_operation_keeps_its_contract_with_an_api_key(case):
    """With a key, the schema declares the Bearer scheme and the 401s; answers with and
    without the key must both fit it."""
    negative = case.meta is not None and case.meta.generation.mode.is_negative
    if not negative:  # a negative case may be one that drops the key on purpose: leave it so
        case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"}, excluded_checks=_excluded(case))
    case.call_and_validate(excluded_checks=_excluded(case))  # as generated: mostly the documented 401
