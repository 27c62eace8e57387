"""How every named actor of the service is created: one place for the options they all share."""

from __future__ import annotations

from typing import Any

import ray

from actors import names


def service_actor(cls: type, name: str, *args: Any, detached: bool, max_concurrency: int) -> ray.actor.ActorHandle:
    """Created on first call, looked up afterwards.

    ``analytics run`` owns its actors (they die with the service); a cluster deployed from
    serve_config.yaml gets detached ones that outlive the deploy command. Every actor restarts
    after a crash and rebuilds its state in its constructor; none reserves a CPU, since a
    2-core node must still fit the Serve replicas.
    """
    return (
        ray.remote(cls)
        .options(
            name=name,
            namespace=names.NAMESPACE,
            get_if_exists=True,
            lifetime="detached" if detached else None,
            max_restarts=-1,
            max_task_retries=0,
            max_concurrency=max_concurrency,
            num_cpus=0,
        )
        .remote(*args)
    )
