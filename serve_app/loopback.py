"""Keep a single-machine service's processes listening on loopback only.

Left to itself, a local Ray opens ~15 ports to the network that nothing outside the machine uses:
its GCS, raylet, workers and agents listen on the machine's outward address and on every interface,
and every Serve replica starts a gRPC server for calls between deployments on every interface.
Both are Ray's own choices with no setting of their own; the functions here turn them to 127.0.0.1.
A service that joins a cluster (``ANALYTICS_RAY_ADDRESS``) is left as Ray sets it up.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from typing import Any

log = logging.getLogger("analytics.loopback")


def keep_local_ray_on_loopback() -> None:
    """Make the Ray node that ``ray.init`` is about to start use 127.0.0.1 as its address.

    Asked for 127.0.0.1 (``ray.init(_node_ip_address=...)``), Ray swaps in the outward address. Its
    switch for single-machine nodes (on by default on macOS and Windows) keeps loopback, and then
    every server of the node binds to it. The variable is for the processes Ray starts; the constant
    is for this one, which has read the variable already.
    """
    from ray._private import ray_constants

    os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False


def keep_replica_grpc_on_loopback() -> None:
    """In a replica on a loopback node, bind Serve's gRPC server for deployment-to-deployment calls
    to 127.0.0.1 instead of every interface.

    The replica starts that server after the deployment's constructor has run, on an address fixed
    in its code ("[::]:0"); the constructor calls this first. The service makes no such calls (its
    one deployment is called only by its clients over HTTP and by Serve's health checks, which are
    actor calls), and on a loopback node any that came would come to 127.0.0.1.
    """
    import ray

    if not ipaddress.ip_address(ray.util.get_node_ip_address()).is_loopback:
        return
    try:
        from ray.serve._private import replica
    except ImportError:  # a private module: a newer Serve may differ; the replica runs either way
        return
    add_port = getattr(replica, "add_port_to_grpc_server", None)
    if add_port is None:
        log.warning("Serve's replica gRPC server stays on every interface: this Ray is laid out differently")
        return
    if getattr(add_port, "keeps_loopback", False):  # done already in this process
        return

    def add_port_on_loopback(server: Any, address: str) -> int:
        if address.startswith("[::]:"):
            address = "127.0.0.1:" + address.removeprefix("[::]:")
        return add_port(server, address)

    add_port_on_loopback.keeps_loopback = True  # type: ignore[attr-defined]
    replica.add_port_to_grpc_server = add_port_on_loopback
