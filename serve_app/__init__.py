"""Ray Serve deployments, the FastAPI app factory, REST routes, auth and the CLI."""
