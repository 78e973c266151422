"""Every error as JSON (RFC 9457 problem details, as Annif's API answers): a status, a
title, a detail that names the article and the field as the command line names them, and
`article` / `field` apart for a program to read. Never a traceback: an unexpected error is
logged and answered with a 500 that says so."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from hybrid.ingest.article import ArticleError
from hybrid.ingest.records import to_json

log = logging.getLogger("hybrid.serve")
MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """An answer other than 2xx, raised anywhere a request is handled."""

    def __init__(self, status: int, detail: str, *, article: str | None = None,
                 field: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.article = article
        self.field = field
        self.headers = headers


def body(status: int, detail: str, article: str | None = None,
         field: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "about:blank", "title": HTTPStatus(status).phrase,
                           "status": status, "detail": detail}
    if article is not None:
        out["article"] = article
    if field is not None:
        out["field"] = field
    return out


def response(status: int, detail: str, article: str | None = None, field: str | None = None,
             headers: dict[str, str] | None = None) -> Response:
    return Response(to_json(body(status, detail, article, field)), status, headers=headers,
                    media_type=MEDIA_TYPE)


def article_problem(exc: ArticleError) -> Problem:
    return Problem(422, str(exc), article=exc.article_id, field=exc.field)


def install(app: FastAPI) -> None:
    """The handlers that turn every exception into a problem response."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return response(exc.status, exc.detail, exc.article, exc.field, exc.headers)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        return response(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = [str(part) for part in first.get("loc", ())[1:]]
        field = ".".join(where) or None
        detail = "; ".join(f"field {'.'.join(str(p) for p in e.get('loc', ())[1:])!r}: "
                           f"{e.get('msg', 'invalid')}" for e in errors[:5])
        return response(422, detail or "invalid request", field=field)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return response(500, f"internal error ({type(exc).__name__}); the server log has the "
                             "details")
