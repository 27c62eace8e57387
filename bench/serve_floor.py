"""The floor of a single-event request through Ray Serve on this machine: an empty endpoint.

Deployed beside the service on the same Serve instance (same HTTP proxy), it answers the
single-event route with a fixed 201 and does nothing else: no auth, no validation, no store.
What it cannot sustain, no service behind Ray Serve's HTTP proxy can.
"""

# Imported here, not in the function: FastAPI resolves the endpoint's annotations by module name.
from fastapi import FastAPI, Request
from fastapi.responses import Response

FLOOR_APP = "bench-floor"
FLOOR_PREFIX = "/bench-floor"


def deploy_empty_endpoint(path: str) -> None:
    """Run the empty app under ``FLOOR_PREFIX`` (Serve must be running in this process's Ray)."""
    from ray import serve

    app = FastAPI()

    @app.post(path)
    async def single(request: Request) -> Response:
        await request.body()
        return Response(b'{"id":"floor","duplicate":false}', status_code=201, media_type="application/json")

    @serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=256)
    @serve.ingress(app)
    class EmptyIngest:
        pass

    serve.run(EmptyIngest.bind(), name=FLOOR_APP, route_prefix=FLOOR_PREFIX)


def remove_empty_endpoint() -> None:
    from ray import serve

    serve.delete(FLOOR_APP)
