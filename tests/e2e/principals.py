"""API keys made for one test module through the admin API, each with a client that sends it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx

# (name, role, content scope or None)
KeySpec = tuple[str, str, dict[str, list[str]] | None]


def make_principals(
    admin: httpx.Client, base_url: str, prefix: str, specs: Iterable[KeySpec]
) -> tuple[dict[str, dict[str, Any]], dict[str, httpx.Client]]:
    """The created keys (the admin API's answers) and a client for each, by name; close the clients."""
    keys: dict[str, dict[str, Any]] = {}
    clients: dict[str, httpx.Client] = {}
    for name, role, scope in specs:
        body: dict[str, Any] = {"name": f"{prefix} {name}", "role": role}
        if scope:
            body["scope"] = scope
        created = admin.post("/api/v1/admin/api-keys", json=body)
        assert created.status_code == 201, created.text
        keys[name] = created.json()
        clients[name] = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {created.json()['key']}"}, timeout=120
        )
    return keys, clients
