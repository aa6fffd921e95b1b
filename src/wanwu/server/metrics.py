"""Prometheus metrics of one app, in its own ``CollectorRegistry`` (tests build many apps):
requests by route template and status, request latency, stage latencies, images classified,
errors by code, and the process's memory/CPU/fds.

Stage latencies are recorded by the stage runner (``wanwu.pipeline.runner``), never by a route,
so each histogram has one meaning on every route: ``wanwu_inference_duration_seconds`` is one
forward pass (a batch of any size; cache hits run none), ``wanwu_stage_duration_seconds`` is one
image's decode, preprocess, postprocess (top-k, or v2's probabilities) or, for explain, its
class activation map (``stage="class_map"``)."""

from __future__ import annotations

import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UNMATCHED = "<unmatched>"  # one label for every path no route knows (keeps cardinality bounded)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


class Metrics:
    """All collectors of one app."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "wanwu_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "wanwu_http_request_duration_seconds",
            "Time to answer an HTTP request (total)",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.inference_seconds = Histogram(
            "wanwu_inference_duration_seconds",
            "One model forward pass (a batch of any size); cache hits run none",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.stage_seconds = Histogram(
            "wanwu_stage_duration_seconds",
            "One image's decode, preprocess, postprocess or class_map (explain)",
            ["model", "stage"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.images = Counter("wanwu_images_classified", "Images classified", ["model"], registry=r)
        self.explained = Counter(
            "wanwu_images_explained", "Images explained (class activation maps)", ["model"], registry=r
        )
        self.errors = Counter("wanwu_errors", "Error responses and failed images by error code", ["code"], registry=r)
        self.ready = Gauge("wanwu_ready", "1 when the server answers inference requests", registry=r)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)

    def watch_service(self, service) -> None:
        """Export the result cache's hits/misses/size and the batchers' queue and batch sizes,
        read from ``service`` at scrape time."""
        self.registry.register(_ServiceCollector(service))

    def observe(self, model: str, stage: str, seconds: float) -> None:
        """The stage runner's ``Recorder``: a forward pass, or one image's other stage."""
        if stage == "inference":
            self.inference_seconds.labels(model).observe(seconds)
        else:
            self.stage_seconds.labels(model, stage).observe(seconds)

    def count_images(self, model: str, n: int = 1) -> None:
        self.images.labels(model).inc(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _ServiceCollector:
    def __init__(self, service) -> None:
        self.service = service

    def describe(self):
        return []

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        cache = self.service.cache
        yield CounterMetricFamily("wanwu_cache_hits", "Result cache hits", value=cache.hits)
        yield CounterMetricFamily("wanwu_cache_misses", "Result cache misses", value=cache.misses)
        yield GaugeMetricFamily("wanwu_cache_entries", "Results held in the cache", value=len(cache))
        yield GaugeMetricFamily("wanwu_cache_bytes", "Bytes held in the result cache", value=cache.size_bytes)
        queued = GaugeMetricFamily("wanwu_inference_queue", "Images waiting for inference", labels=["model"])
        batches = CounterMetricFamily("wanwu_inference_batches", "Forward passes run", labels=["model"])
        batched = CounterMetricFamily(
            "wanwu_inference_batched_images", "Images run through forward passes", labels=["model"]
        )
        for model, batcher in list(self.service.batchers.items()):
            queued.add_metric([model], batcher.queued)
            batches.add_metric([model], batcher.batches)
            batched.add_metric([model], batcher.images)
        yield from (queued, batches, batched)


def route_template(scope: Scope, router: Router) -> str:
    """``/v2/models/{name}/infer``, not the concrete path. Requests answered before routing
    (e.g. a 413 from the body limit) are matched here."""
    route = scope.get("route")
    if route is not None and hasattr(route, "path"):
        return route.path
    for candidate in router.routes:
        match, _ = candidate.matches(scope)
        if match == Match.FULL:
            return getattr(candidate, "path", UNMATCHED)
    return UNMATCHED


class MetricsMiddleware:
    """Count and time every HTTP request (outermost, so it sees the final status)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, router: Router):
        self.app = app
        self.metrics = metrics
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = route_template(scope, self.router)
            method = scope.get("method", "")
            method = method if method in _METHODS else "OTHER"
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.request_seconds.labels(route).observe(time.perf_counter() - start)
