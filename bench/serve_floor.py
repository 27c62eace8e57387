"""The floor of a single-event request through Ray Serve on this machine: an empty endpoint.

Deployed beside the service on the same Serve instance and in the same way (a replica serving
HTTP itself with direct ingress, or behind Serve's HTTP proxy), it answers the single-event route
with a fixed 201 and does nothing else: no auth, no validation, no store. What it cannot sustain,
no service deployed the same way can.
"""

from typing import Any

# Imported here, not in the function: FastAPI resolves the endpoint's annotations by module name.
from fastapi import FastAPI, Request
from fastapi.responses import Response

FLOOR_APP = "bench-floor"
FLOOR_PREFIX = "/bench-floor"


def _empty_app(path: str) -> FastAPI:
    app = FastAPI()

    @app.post(path)
    async def single(request: Request) -> Response:
        await request.body()
        return Response(b'{"id":"floor","duplicate":false}', status_code=201, media_type="application/json")

    return app


def deploy_empty_endpoint(path: str, service: Any) -> str:
    """Run the empty app (Serve must be running in this process's Ray); returns its base URL."""
    from ray import serve

    from bench.common import free_port
    from serve_app.direct_server import DirectAnalyticsServer, ReplicaHttpServer

    settings = service.settings
    if settings.ingress_mode == "direct":
        host, port = settings.host, free_port()

        # The service's own replica class (health check, shutdown), serving the empty app instead.
        @serve.deployment(ray_actor_options={"num_cpus": 0})
        class EmptyIngestServer(DirectAnalyticsServer):
            async def __init__(self) -> None:
                self._http = ReplicaHttpServer(_empty_app(path), host, port)
                await self._http.start()

        serve.run(EmptyIngestServer.bind(), name=FLOOR_APP, route_prefix=None)
        return f"http://{host}:{port}"

    @serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=256)
    @serve.ingress(_empty_app(path))
    class EmptyIngest:
        pass

    serve.run(EmptyIngest.bind(), name=FLOOR_APP, route_prefix=FLOOR_PREFIX)
    return service.base_url.rstrip("/") + FLOOR_PREFIX


def remove_empty_endpoint() -> None:
    from ray import serve

    serve.delete(FLOOR_APP)
