"""ASGI middleware: request body size limit, request metrics, page security headers."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import PROBLEM_MEDIA_TYPE
from app.core.metrics import ApiMetrics

_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class BodySizeLimitMiddleware:
    """Answer 413 for bodies over ``max_bytes``, declared or streamed.

    The body is read here (it is at most ``max_bytes``) and replayed to the application,
    so a chunked upload without Content-Length is caught too. ``routes`` gives single
    paths a limit of their own, with the setting that sets it (the model upload takes
    megabytes; every other request keeps the small limit).
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        routes: Mapping[str, tuple[int, str]] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.routes = dict(routes or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _METHODS_WITH_BODY:
            await self.app(scope, receive, send)
            return
        limit, setting = self.routes.get(
            scope["path"].rstrip("/"), (self.max_bytes, "HWSCORE_MAX_REQUEST_BYTES")
        )
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(scope, send, limit, setting)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            if size > limit:
                await self._reject(scope, send, limit, setting)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, send: Send, limit: int, setting: str) -> None:
        body = json.dumps(
            {
                "type": "urn:hwscore:problem:content-too-large",
                "title": "Content Too Large",
                "status": 413,
                "detail": f"the request body is larger than {limit} bytes, the limit "
                f"of this server ({setting})",
                "instance": scope["path"],
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class MetricsMiddleware:
    """Count and time every HTTP request by route template and status code."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe_request(
                scope["method"], route, status, time.perf_counter() - started
            )


PAGE_HEADERS: dict[str, str] = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
"""What every HTML page and SVG figure is sent with unless it sets its own policy (the
docs pages do): the pages run no script and load nothing from outside the server, so a
text that slipped past escaping still could not run or phone home, and no other site can
frame them."""


class PageSecurityMiddleware:
    """Add ``PAGE_HEADERS`` to HTML and SVG responses that carry no CSP of their own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = {k.lower(): v for k, v in message.get("headers", [])}
                media = headers.get(b"content-type", b"").split(b";")[0].strip()
                if media in (b"text/html", b"image/svg+xml") and (
                    b"content-security-policy" not in headers
                ):
                    extra = [(k.lower().encode(), v.encode()) for k, v in PAGE_HEADERS.items()]
                    message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
