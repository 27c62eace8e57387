"""The GraphQL router: queries and mutations over HTTP, subscriptions over graphql-transport-ws.

A websocket authenticates once, in its ``connection_init`` message:
``{"type": "connection_init", "payload": {"Authorization": "Bearer <api key>"}}`` (browsers
cannot set headers on a websocket); an ``Authorization`` header on the upgrade request works
too. A missing or invalid key closes the socket with 4403.
"""

from __future__ import annotations

from typing import Any

import orjson
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from core.errors import AnalyticsError

SUBSCRIPTION_PROTOCOLS = (GRAPHQL_TRANSPORT_WS_PROTOCOL,)


def authorization_from(connection_params: Any, headers: Any) -> str | None:
    params = connection_params if isinstance(connection_params, dict) else {}
    for name in ("Authorization", "authorization"):
        value = params.get(name)
        if isinstance(value, str) and value:
            return value
    return headers.get("authorization") if headers is not None else None


class AnalyticsGraphQLRouter(GraphQLRouter):
    def decode_json(self, data: str | bytes) -> object:
        # orjson refuses nesting past its limit with a JSONDecodeError, which Strawberry answers as a
        # 400; json.loads raises RecursionError there, a 500.
        return orjson.loads(data)

    async def on_ws_connect(self, context: Any) -> UnsetType | dict[str, object] | None:
        request = context.request
        services = request.app.state.services
        try:
            authorization = authorization_from(context.connection_params, request.headers)
            context.principal = await services.auth.authenticate(authorization)
        except AnalyticsError as exc:
            raise ConnectionRejectionError({"code": exc.code, "message": exc.message}) from exc
        return UNSET
