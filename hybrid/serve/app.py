"""The ASGI application: routes, each a few lines over `Service`; the page for people at
`/`; OpenAPI at /docs (Swagger UI served from the package: no CDN, so it works offline).

Safe by default: the server binds 127.0.0.1 (`server`); feedback, the review queue and
admin need the bearer key; bodies are capped (413) and timed (408), batches capped (422);
CORS is off unless `serve_cors_origins` names origins; errors are problem JSON.
"""

from __future__ import annotations

import asyncio
import hmac
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.responses import FileResponse, Response

from hybrid.ingest.article import ArticleError
from hybrid.ingest.records import parse_json, to_json
from hybrid.serve import problems, schemas
from hybrid.serve.feedback import REVIEW_ROWS
from hybrid.serve.limits import BodyLimits
from hybrid.serve.metrics import MetricsMiddleware
from hybrid.serve.problems import Problem
from hybrid.serve.service import Service

PAGE = Path(__file__).parent / "page"
# the page: its own script and style only, nothing inline, nothing from elsewhere
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                           "frame-ancestors 'none'; base-uri 'none'",
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-cache"}
Bearer = Annotated[HTTPAuthorizationCredentials | None,
                   Depends(HTTPBearer(auto_error=False, description="HYBRID_API_KEY"))]
Explain = Annotated[bool, Query(description="Add what `predict --explain` shows, and why each "
                                            "tag was given")]


def json_response(data: Any, status: int = 200) -> Response:
    return Response(to_json(data), status, media_type="application/json")


async def read_json(request: Request) -> Any:
    """The body as JSON, read as `tag-file` reads a line (bytes that are not UTF-8 survive
    and are repaired and flagged in the text fields); 422 when it is no JSON."""
    raw = await request.body()
    value = parse_json(raw.decode("utf-8", "surrogateescape"), "<body>")
    if isinstance(value, ArticleError):
        raise Problem(422, f"the body is not JSON: {value.detail}", field="<json>")
    return value


def create_app(service: Service) -> FastAPI:
    config = service.config

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, service.reload_in_background)
        try:
            yield
        finally:
            loop.remove_signal_handler(signal.SIGHUP)
            await service.stop()

    app = FastAPIOffline(
        title="hybrid", version=metadata.version("hybrid"), lifespan=lifespan,
        description="Authorized categories and keyword tags for an article, while its "
                    "author writes. A failed call must never block saving a post: see "
                    "docs/serve.md.")
    problems.install(app)
    app.add_middleware(BodyLimits, max_body=config.serve_max_body,
                       timeout=config.serve_timeout)
    origins = [o.strip() for o in config.serve_cors_origins.split(",") if o.strip()]
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"], max_age=600)
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)

    def key(credentials: HTTPAuthorizationCredentials | None) -> None:
        if not service.api_key:
            raise Problem(403, "this needs an API key, and none is set: start hybrid serve "
                               "with HYBRID_API_KEY in its environment")
        given = credentials.credentials if credentials else ""
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"),
                                   service.api_key.encode("utf-8")):
            raise Problem(401, "missing or wrong API key: send 'Authorization: Bearer KEY'",
                          headers={"WWW-Authenticate": "Bearer"})

    # `async`: FastAPI runs a plain `def` dependency in a worker thread, a hop there and
    # back (two thread hand-offs) on every request for a comparison of a few bytes
    async def needs_key(credentials: Bearer) -> None:
        key(credentials)

    async def suggest_key(credentials: Bearer) -> None:
        if config.serve_suggest_access == "key":
            key(credentials)

    suggest_deps = [Depends(suggest_key)]

    @app.post("/v1/suggest", tags=["suggest"], dependencies=suggest_deps,
              responses={200: {"model": schemas.SuggestionOut}, **schemas.PROBLEMS},
              openapi_extra=schemas.json_body(schemas.ArticleIn.model_json_schema()))
    async def suggest(request: Request, explain: Explain = False) -> Response:
        """Categories, tags and confidence for one article."""
        return json_response(await service.suggest(await read_json(request), explain))

    @app.post("/v1/suggest-batch", tags=["suggest"], dependencies=suggest_deps,
              responses={200: {"model": schemas.BatchOut}, **schemas.PROBLEMS},
              openapi_extra=schemas.json_body(schemas.batch_schema(config.serve_max_batch)))
    async def suggest_batch(request: Request, explain: Explain = False) -> Response:
        """Up to `serve_max_batch` articles; one that cannot be tagged gets `error`, the
        others their labels, in order."""
        body = await read_json(request)
        articles = body.get("articles") if isinstance(body, dict) else None
        if not isinstance(articles, list):
            raise Problem(422, "field 'articles': expected a list of articles",
                          field="articles")
        if len(articles) > config.serve_max_batch:
            raise Problem(422, f"field 'articles': {len(articles)} articles, at most "
                               f"{config.serve_max_batch} per request (serve_max_batch)",
                          field="articles")
        return json_response(await service.suggest_batch(articles, explain))

    @app.post("/v1/feedback", tags=["people"], dependencies=[Depends(needs_key)],
              responses={200: {"model": schemas.FeedbackOut}, **schemas.PROBLEMS},
              openapi_extra=schemas.json_body(schemas.FeedbackIn.model_json_schema()))
    async def feedback(request: Request) -> Response:
        """A person's categories and tags for an article, stored as manual labels."""
        return json_response(await service.save_feedback(await read_json(request)))

    @app.get("/v1/review", tags=["people"], dependencies=[Depends(needs_key)],
             responses=schemas.PROBLEMS)
    async def review(limit: Annotated[int, Query(ge=1, le=REVIEW_ROWS)] = 20) -> Response:
        """The articles `review export --select uncertain` picks, not yet labelled."""
        return json_response(await service.review_queue(limit))

    @app.post("/v1/admin/reload", tags=["admin"], dependencies=[Depends(needs_key)],
              responses=schemas.PROBLEMS,
              openapi_extra=schemas.json_body(schemas.ReloadIn.model_json_schema(), False))
    async def reload(request: Request) -> Response:
        """Serve a new model once it is verified and predicts; the old one serves meanwhile
        and keeps serving if the new one is refused."""
        body = await read_json(request) if await request.body() else {}
        model = body.get("model") if isinstance(body, dict) else None
        if model is not None and not isinstance(model, str):
            raise Problem(422, "field 'model': expected a directory path", field="model")
        return json_response(await service.reload(model))

    @app.get("/v1/health", tags=["operations"])
    async def health() -> Response:
        """The process answers (whether or not the model is loaded)."""
        return json_response({"status": "ok", "state": service.state})

    @app.get("/v1/ready", tags=["operations"], responses={503: schemas.PROBLEMS[503]})
    async def ready() -> Response:
        """200 once a worker serves the model; 503 while loading or stopping."""
        generation = service.ready()
        return json_response({"status": "ready", "model": generation.summary(),
                              "workers": len(service.pool.serving)})

    @app.get("/v1/model", tags=["operations"])
    async def model() -> Response:
        """The manifest: taxonomy, metrics, creation time, embedder."""
        return json_response(service.describe())

    @app.get("/metrics", tags=["operations"], include_in_schema=True)
    async def metrics() -> Response:
        """Prometheus text format."""
        return service.metrics.export()

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        return FileResponse(PAGE / "index.html", headers=PAGE_HEADERS)

    app.mount("/page", StaticFiles(directory=PAGE), name="page")
    return app
