"""storage/bus.py: the in-process bus and NATS (the real server on this machine)."""

import asyncio
import secrets

import nats

from storage.bus import InProcessBus, NatsBus, open_bus
from tests.conftest import NATS_URL


async def test_in_process_bus_delivers_to_subscribers():
    bus = InProcessBus()
    got: list[tuple[str, bytes]] = []

    async def handler(subject: str, payload: bytes) -> None:
        got.append((subject, payload))

    bus.subscribe("analytics.event_processed", handler)
    await bus.publish("analytics.event_processed", b"one")
    await bus.publish("other", b"two")
    assert got == [("analytics.event_processed", b"one")]


async def test_nats_bus_publishes_with_a_message_id():
    subject = f"analytics.test.{secrets.token_hex(4)}"
    listener = await nats.connect(NATS_URL)
    received: asyncio.Queue = asyncio.Queue()
    await listener.subscribe(subject, cb=received.put)
    await listener.flush()
    bus = open_bus(NATS_URL)
    assert isinstance(bus, NatsBus)
    try:
        await bus.publish(subject, b'{"count": 2}', message_id="e-1-0")
        await bus.flush()
        msg = await asyncio.wait_for(received.get(), 10)
        assert msg.data == b'{"count": 2}'
        assert msg.headers["Nats-Msg-Id"] == "e-1-0"
    finally:
        await bus.close()
        await listener.close()


async def test_unreachable_nats_never_raises():
    bus = NatsBus("nats://127.0.0.1:1")
    await bus.publish("analytics.event_processed", b"{}")
    assert bus.failures == 1
