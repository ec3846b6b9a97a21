"""The one place errors become HTTP answers, for every service."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from .errors import ApiError, MethodNotAllowed, NotFound, PayloadTooLarge

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: Called once per request with the answer, the refusal (if any) and the seconds it took.
Observer = Callable[[web.Request, web.StreamResponse, ApiError | None, float], None]


def error_response(error: ApiError) -> web.Response:
    """Render an error as the contract's JSON body, with Retry-After when set."""
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
    return web.json_response(error.body(), status=error.status, headers=headers)


def error_middleware(observe: Observer | None = None) -> Middleware:
    """Middleware that maps refusals (ours and aiohttp's routing ones) to JSON answers."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        error: ApiError | None = None
        try:
            response = await handler(request)
        except ApiError as exc:
            # The refusal without its traceback: that holds this frame (a cycle only the
            # garbage collector frees) and the handler's, with the request's body in it, so
            # a burst of refused large bodies would stay in memory until a collection.
            error = exc.with_traceback(None)
        except web.HTTPNotFound:
            error = NotFound(f"no route for {request.path}")
        except web.HTTPMethodNotAllowed:
            error = MethodNotAllowed(f"{request.method} is not allowed here")
        except web.HTTPRequestEntityTooLarge as exc:
            error = PayloadTooLarge(exc.text or "body too large")
        if error is not None:
            response = error_response(error)
        if observe is not None:
            observe(request, response, error, time.perf_counter() - started)
        return response

    return middleware


def route_label(request: web.Request) -> str:
    """The route's canonical path: a metric label bounded whatever paths clients try."""
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"
