"""FastAPI dependencies as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from core.access import Principal
from serve_app.services import Services


async def get_services(request: Request) -> Services:
    # async: a plain def dependency runs in the thread pool, a thread hop on every request.
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_principal(services: ServicesDep, authorization: Annotated[str | None, Header()] = None) -> Principal:
    return await services.auth.authenticate(authorization)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def ingest_caller(request: Request) -> tuple[Services, Principal]:
    """The services and the authenticated caller, for the ingest routes, without FastAPI's
    dependency solving: that took ~75 us of the ~1.2 ms of CPU a single-event request costs."""
    services: Services = request.app.state.services
    return services, await services.auth.authenticate(request.headers.get("authorization"))
