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
