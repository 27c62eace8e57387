"""Request ids: every HTTP answer carries ``X-Request-ID``, the id the audit trail files the request under.

A client's own ``X-Request-ID`` is kept when it is sane (1 to 128 letters, digits and ``. _ : -``, as
tracing systems and UUIDs write them); anything else, or none, is replaced by a generated id. The id
is in ``scope["state"]["request_id"]`` for the rest of the app, and in storage's ``REQUEST_ORIGIN`` with
the client's address, so audit entries written while the request runs carry both.

Plain ASGI, wrapped around the whole app (outside Starlette's error middleware): a 500 carries the id too.
"""

from __future__ import annotations

import re
import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from storage.audit_log import REQUEST_ORIGIN, RequestOrigin

REQUEST_ID_HEADER = b"x-request-id"
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


def request_id_of(scope: Scope) -> str | None:
    state = scope.get("state")
    return state.get("request_id") if isinstance(state, dict) else None


def client_address_of(scope: Scope) -> str | None:
    """The address of the peer that sent the request, as the server saw it (a proxy's, behind one that
    the server does not trust to forward it)."""
    client = scope.get("client")
    return str(client[0]) if client else None


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            if _SANE_REQUEST_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return secrets.token_hex(16)


class RequestIds:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        header = (REQUEST_ID_HEADER, request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        token = REQUEST_ORIGIN.set(RequestOrigin(request_id, client_address_of(scope)))
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ORIGIN.reset(token)
