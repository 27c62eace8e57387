"""A real SMTP server for tests (aiosmtpd), on a loopback port the OS picks, keeping what it accepts."""

from __future__ import annotations

import email
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy

from aiosmtpd.controller import Controller


@dataclass
class Mailbox:
    """aiosmtpd handler: answers DATA with the scripted replies in turn (then 250), keeps what it accepted."""

    replies: list[str] = field(default_factory=list)
    received: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    data_commands: int = 0
    # The port its server listens on, once started.
    port: int = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        self.data_commands += 1
        if self.replies:
            return self.replies.pop(0)
        parsed = email.message_from_bytes(envelope.original_content or envelope.content, policy=default_policy)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 OK"


class LoopbackController(Controller):
    """aiosmtpd's controller on a port the OS picks: it learns the port before its own readiness probe."""

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()
