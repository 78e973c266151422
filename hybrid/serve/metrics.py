"""What Prometheus scrapes at /metrics (prometheus-client, text format): requests by route
and status, their latency, errors, the model that serves, and how batching and the LLM
fallback are doing. One registry per app: a test's app never sees another's counts."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10,
                    30)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("hybrid_http_requests", "HTTP requests answered",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("hybrid_http_request_seconds", "Time to answer a request",
                                 ["route"], buckets=_LATENCY_BUCKETS, registry=r)
        self.errors = Counter("hybrid_http_errors", "Requests answered with 4xx (client) "
                              "or 5xx (server)", ["route", "kind"], registry=r)
        self.model = Info("hybrid_model", "The model that serves", registry=r)
        self.reloads = Counter("hybrid_reloads", "Model reloads by outcome", ["outcome"],
                               registry=r)
        self.batch = Histogram("hybrid_batch_articles", "Articles predicted together",
                               buckets=(1, 2, 4, 8, 16, 32, 64), registry=r)
        self.queued = Gauge("hybrid_queued_articles", "Articles waiting for a worker",
                            registry=r)
        self.articles = Counter("hybrid_articles", "Articles predicted, by outcome",
                                ["outcome"], registry=r)
        self.llm = Counter("hybrid_llm_fallback", "Articles sent to the LLM fallback, by "
                           "outcome", ["status"], registry=r)
        self.workers = Gauge("hybrid_workers", "Model worker processes serving", registry=r)

    def show_model(self, summary: dict[str, Any]) -> None:
        self.model.info({k: str(v) for k, v in summary.items()})

    def export(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Counts every answer under its route's template (never the raw path: a scanner's
    random paths would make a metric per path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            route = getattr(scope.get("route"), "path", "<unmatched>")
            m = self.metrics
            m.requests.labels(scope["method"], route, str(status)).inc()
            m.latency.labels(route).observe(time.perf_counter() - started)
            if status >= 400:
                m.errors.labels(route, "client" if status < 500 else "server").inc()
