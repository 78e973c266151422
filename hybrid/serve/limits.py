"""Limits on what a request may cost before any of it is parsed: body size (413) and the
time its body may take to arrive (408), as an ASGI middleware around the whole app.

A declared Content-Length over the limit is answered at once, without reading the body;
a chunked body is counted as it arrives and refused when it passes the limit, so no
request holds more than `max_body` bytes in memory. A client that stops sending midway
(slowloris) is cut off after `timeout` seconds instead of holding a connection forever.
"""

from __future__ import annotations

import asyncio

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hybrid.serve import problems


class BodyTooLarge(problems.Problem):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit:,} bytes (serve_max_body)")


class BodyTooSlow(problems.Problem):
    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"request body did not arrive within {seconds:g}s "
                              "(serve_timeout)")


class BodyLimits:
    def __init__(self, app: ASGIApp, max_body: int, timeout: float) -> None:
        self.app = app
        self.max_body = max_body
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            problem = self._check_declared(declared)
            if problem is not None:
                await problem(scope, receive, send)
                return
        await self.app(scope, self._counted(receive), send)

    def _check_declared(self, declared: bytes) -> Response | None:
        try:
            length = int(declared)
        except ValueError:
            return problems.response(400, "Content-Length is not a number")
        if length < 0:
            return problems.response(400, "Content-Length is negative")
        if length > self.max_body:
            return problems.response(413, f"request body over {self.max_body:,} bytes "
                                          "(serve_max_body)", headers={"Connection": "close"})
        return None

    def _counted(self, receive: Receive) -> Receive:
        seen = 0
        complete = False
        deadline = asyncio.get_running_loop().time() + self.timeout

        async def counted() -> Message:
            nonlocal seen, complete
            if complete:  # later calls wait for a disconnect: no deadline on those
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTooSlow(self.timeout) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge(self.max_body)
                complete = not message.get("more_body", False)
            return message

        return counted
