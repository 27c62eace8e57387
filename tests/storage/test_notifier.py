"""storage/notifier.py against real servers on loopback: an SMTP server (aiosmtpd, in its own thread) and
HTTP receivers (aiohttp) standing in for a webhook endpoint, Slack and Teams."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import socket
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiosmtpd.smtp import AuthResult, LoginPassword

from core.errors import InvalidRequest
from core.settings import Settings
from storage.notifier import (
    MAX_RETRY_DELAY_SECONDS,
    Attachment,
    Channel,
    DeliveryOutcome,
    Notification,
    NotificationTarget,
    Notifier,
    parse_targets,
    sign,
    verify,
)
from tests.certificates import make_certificates
from tests.mail import LoopbackController, Mailbox

SECRET = "whsec_" + "k" * 32
LINK = "https://analytics.example.com/api/v1/files/run_1?expires=1700000000&signature=abc123"
PAYLOAD = {
    "event": "analytics.report_generated",
    "report_id": "rep_1",
    "run_id": "run_1",
    "status": "completed",
    "file_size": 1234,
    "sha256": "ab" * 32,
    "download_url": LINK,
}


def notification(*, attachment: Attachment | None = None, link: str | None = LINK, subject: str | None = None):
    return Notification(
        subject=subject or "Report 'Weekly performance' is ready",
        text="The run of 2024-05-06 finished: 1,234 rows.",
        link=link,
        attachment=attachment,
        payload=PAYLOAD,
    )


def settings(**values: Any) -> Settings:
    base: dict[str, Any] = {"notify_backoff_seconds": 0.01, "notify_retries": 4, "notify_timeout_seconds": 5.0}
    return Settings(**(base | values))


class Sleeps:
    """The notifier's sleep: records each delay asked for and yields without waiting it."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def assert_doubling(delays: list[float], base: float) -> None:
    # Each delay is base * 2**n stretched by at most a quarter (the jitter).
    for n, delay in enumerate(delays):
        assert base * 2**n <= delay <= base * 2**n * 1.25, (n, delay)


def free_port() -> int:
    """A port nothing listens on (bound by the OS, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the SMTP server ----------------------------------------------------------------------------


@dataclass
class SmtpServer:
    mailbox: Mailbox
    port: int


def start_smtp(mailbox: Mailbox, **smtp_options: Any) -> LoopbackController:
    controller = LoopbackController(mailbox, hostname="127.0.0.1", port=0, **smtp_options)
    controller.start()
    return controller


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    mailbox = Mailbox()
    controller = start_smtp(mailbox)
    yield SmtpServer(mailbox, controller.port)
    controller.stop()


def smtp_settings(port: int, **values: Any) -> Settings:
    return settings(smtp_host="127.0.0.1", smtp_port=port, smtp_from="reports@analytics.example.com", **values)


EMAIL = NotificationTarget(Channel.EMAIL, "ops@example.com")


# --- e-mail -------------------------------------------------------------------------------------


async def test_an_email_carries_the_subject_the_text_the_link_and_the_file(smtp, sleeps):
    data = os.urandom(3000)
    attachment = Attachment("weekly-performance.pdf", "application/pdf", data)
    notifier = Notifier(smtp_settings(smtp.port), sleep=sleeps)
    outcome = await notifier.deliver(EMAIL, notification(attachment=attachment))
    await notifier.close()

    assert outcome == DeliveryOutcome(True, 1, None)
    [(mail_from, rcpt_tos, message)] = smtp.mailbox.received
    assert (mail_from, rcpt_tos) == ("reports@analytics.example.com", ["ops@example.com"])
    assert message["Subject"] == "Report 'Weekly performance' is ready"
    assert message["From"] == "reports@analytics.example.com"
    assert message["To"] == "ops@example.com"
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "The run of 2024-05-06 finished: 1,234 rows." in body
    assert f"Download: {LINK}" in body
    [attached] = list(message.iter_attachments())
    assert attached.get_filename() == "weekly-performance.pdf"
    assert attached.get_content_type() == "application/pdf"
    assert attached.get_content() == data
    assert sleeps.delays == []


@pytest.mark.parametrize(("size", "attached"), [(1000, True), (1001, False)])
async def test_a_file_over_the_limit_is_linked_not_attached(smtp, size, attached):
    data = os.urandom(size)
    notifier = Notifier(smtp_settings(smtp.port, notify_attachment_max_bytes=1000))
    outcome = await notifier.deliver(EMAIL, notification(attachment=Attachment("big.xlsx", "application/x", data)))
    await notifier.close()

    assert outcome == DeliveryOutcome(True, 1, None)
    [(_, _, message)] = smtp.mailbox.received
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert f"Download: {LINK}" in body
    attachments = list(message.iter_attachments())
    if attached:
        assert [a.get_content() for a in attachments] == [data]
        assert "not attached" not in body
    else:
        assert attachments == []
        assert "The file big.xlsx (1001 bytes) is larger than e-mail attachments may be (1000 bytes)" in body
        assert "download it from the link above" in body


async def test_a_too_large_file_without_a_link_says_so(smtp):
    notifier = Notifier(smtp_settings(smtp.port, notify_attachment_max_bytes=10))
    big = Attachment("r.csv", "text/csv", b"x" * 11)
    assert await notifier.deliver(EMAIL, notification(attachment=big, link=None)) == DeliveryOutcome(True, 1, None)
    await notifier.close()
    [(_, _, message)] = smtp.mailbox.received
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "Download:" not in body
    assert "so it is not attached; no download link is available." in body


async def test_a_subject_cannot_add_headers(smtp):
    notifier = Notifier(smtp_settings(smtp.port))
    injected = notification(subject="Weekly\r\nBcc: someone@evil.example\r\n\r\nbody")
    assert await notifier.deliver(EMAIL, injected) == DeliveryOutcome(True, 1, None)
    await notifier.close()
    [(_, rcpt_tos, message)] = smtp.mailbox.received
    assert rcpt_tos == ["ops@example.com"]
    assert message["Bcc"] is None
    assert message["Subject"] == "Weekly Bcc: someone@evil.example body"


async def test_smtp_4xx_replies_are_retried_with_doubling_delays(smtp, sleeps):
    smtp.mailbox.replies = ["451 4.3.0 Try again later", "451 4.3.0 Try again later"]
    notifier = Notifier(smtp_settings(smtp.port), sleep=sleeps)
    outcome = await notifier.deliver(EMAIL, notification())
    await notifier.close()

    assert outcome == DeliveryOutcome(True, 3, None)
    assert smtp.mailbox.data_commands == 3
    assert len(smtp.mailbox.received) == 1
    assert len(sleeps.delays) == 2
    assert_doubling(sleeps.delays, 0.01)


async def test_an_smtp_5xx_reply_is_final(smtp, sleeps):
    smtp.mailbox.replies = ["550 5.7.1 Mailbox unavailable"]
    notifier = Notifier(smtp_settings(smtp.port), sleep=sleeps)
    outcome = await notifier.deliver(EMAIL, notification())
    await notifier.close()

    assert outcome == DeliveryOutcome(False, 1, "the SMTP server answered 550 to DATA: 5.7.1 Mailbox unavailable")
    assert smtp.mailbox.data_commands == 1
    assert sleeps.delays == []


async def test_retries_stop_after_the_configured_number(smtp, sleeps):
    smtp.mailbox.replies = ["452 4.2.2 Mailbox full"] * 10
    notifier = Notifier(smtp_settings(smtp.port, notify_retries=2), sleep=sleeps)
    outcome = await notifier.deliver(EMAIL, notification())
    await notifier.close()

    assert outcome == DeliveryOutcome(False, 3, "the SMTP server answered 452 to DATA: 4.2.2 Mailbox full")
    assert smtp.mailbox.data_commands == 3
    assert_doubling(sleeps.delays, 0.01)
    assert len(sleeps.delays) == 2


async def test_an_unreachable_smtp_server_is_retried(sleeps):
    notifier = Notifier(smtp_settings(free_port(), notify_retries=1), sleep=sleeps)
    outcome = await notifier.deliver(EMAIL, notification())
    await notifier.close()
    assert (outcome.delivered, outcome.attempts) == (False, 2)
    assert outcome.error is not None and outcome.error.startswith("SMTP connection failed: ConnectionRefusedError")
    assert len(sleeps.delays) == 1


async def test_without_an_smtp_server_nothing_is_tried(sleeps):
    notifier = Notifier(settings(smtp_host=None), sleep=sleeps)
    outcome = await notifier.deliver(EMAIL, notification())
    await notifier.close()
    assert outcome == DeliveryOutcome(False, 0, "no SMTP server is configured (ANALYTICS_SMTP_HOST)")
    assert sleeps.delays == []


def _authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    good = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"reports", b"s3cret-pw")
    # handled=False: aiosmtpd answers a refusal itself (535).
    return AuthResult(success=good, handled=False)


@pytest.mark.parametrize(("password", "delivered"), [("s3cret-pw", True), ("wrong-pw", False)])
async def test_the_login_on_a_loopback_server(password, delivered, sleeps):
    mailbox = Mailbox()
    controller = start_smtp(mailbox, authenticator=_authenticator, auth_require_tls=False)
    try:
        notifier = Notifier(
            smtp_settings(controller.port, smtp_username="reports", smtp_password=password), sleep=sleeps
        )
        outcome = await notifier.deliver(EMAIL, notification())
        await notifier.close()
    finally:
        controller.stop()
    if delivered:
        assert outcome == DeliveryOutcome(True, 1, None)
        assert len(mailbox.received) == 1
    else:
        assert (outcome.delivered, outcome.attempts) == (False, 1)
        assert outcome.error is not None and outcome.error.startswith("the SMTP server answered 535 to AUTH")
        assert password not in outcome.error
        assert mailbox.received == []


async def test_a_login_without_tls_to_another_host_is_refused(sleeps):
    notifier = Notifier(
        settings(smtp_host="smtp.example.com", smtp_username="reports", smtp_password="pw-pw-pw"), sleep=sleeps
    )
    outcome = await notifier.deliver(EMAIL, notification())
    await notifier.close()
    assert (outcome.delivered, outcome.attempts) == (False, 0)
    assert outcome.error is not None and "ANALYTICS_SMTP_STARTTLS" in outcome.error
    assert "pw-pw-pw" not in outcome.error


async def test_starttls_then_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    issued = make_certificates(tmp_path / "tls")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(issued.cert_file, issued.key_file)
    # The client trusts the test authority the way it trusts the system's (OpenSSL reads this variable).
    monkeypatch.setenv("SSL_CERT_FILE", str(issued.ca_file))
    mailbox = Mailbox()
    controller = start_smtp(
        mailbox, tls_context=server_tls, require_starttls=True, authenticator=_authenticator, auth_required=True
    )
    try:
        values = {"smtp_username": "reports", "smtp_password": "s3cret-pw"}
        notifier = Notifier(smtp_settings(controller.port, smtp_starttls=True, **values))
        outcome = await notifier.deliver(EMAIL, notification())
        await notifier.close()
    finally:
        controller.stop()
    assert outcome == DeliveryOutcome(True, 1, None)
    [(_, _, message)] = mailbox.received
    assert message["Subject"] == "Report 'Weekly performance' is ready"


async def test_starttls_asked_of_a_server_without_it_is_final(smtp, sleeps):
    notifier = Notifier(smtp_settings(smtp.port, smtp_starttls=True), sleep=sleeps)
    outcome = await notifier.deliver(EMAIL, notification())
    await notifier.close()
    assert outcome == DeliveryOutcome(False, 1, "SMTP: STARTTLS extension not supported by server.")
    assert smtp.mailbox.received == []


# --- HTTP receivers -----------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP endpoint answering each request with the next scripted (status, headers, body), then 200."""

    base_url: str
    script: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    delay: float = 0.0

    def url(self, path: str = "/hook") -> str:
        return self.base_url + path

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(Received(request.path, dict(request.headers), await request.read()))
        if self.delay:
            await asyncio.sleep(self.delay)
        status, headers, text = self.script.pop(0) if self.script else (200, {}, "ok")
        return web.Response(status=status, headers=headers, text=text)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    holder: list[Receiver] = []

    async def handle(request: web.Request) -> web.Response:
        return await holder[0].handle(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    holder.append(Receiver(f"http://{host}:{port}"))
    yield holder[0]
    await runner.cleanup()


def webhook(receiver: Receiver, path: str = "/hook") -> NotificationTarget:
    return NotificationTarget(Channel.WEBHOOK, receiver.url(path))


# --- webhooks -----------------------------------------------------------------------------------


async def test_a_webhook_gets_the_payload_signed(receiver, sleeps):
    notifier = Notifier(settings(webhook_signing_secret=SECRET), sleep=sleeps)
    before = int(time.time())
    outcome = await notifier.deliver(webhook(receiver), notification())
    after = int(time.time())
    await notifier.close()

    assert outcome == DeliveryOutcome(True, 1, None)
    [request] = receiver.requests
    assert request.body == orjson.dumps(PAYLOAD)
    assert orjson.loads(request.body) == PAYLOAD
    headers = request.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Analytics-Event"] == "analytics.report_generated"
    assert str(uuid.UUID(headers["X-Analytics-Delivery"])) == headers["X-Analytics-Delivery"]
    timestamp = int(headers["X-Analytics-Timestamp"])
    assert before <= timestamp <= after
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256).hexdigest()
    assert headers["X-Analytics-Signature"] == f"sha256={expected}"

    signature = headers["X-Analytics-Signature"]
    now = time.time()
    assert verify(SECRET, headers["X-Analytics-Timestamp"], request.body, signature, now=now)
    assert not verify("whsec_" + "x" * 32, timestamp, request.body, signature, now=now)
    assert not verify(SECRET, timestamp, request.body.replace(b"rep_1", b"rep_2"), signature, now=now)
    assert not verify(SECRET, timestamp + 1, request.body, signature, now=now)
    assert not verify(SECRET, timestamp, request.body, signature, now=timestamp + 301)
    assert verify(SECRET, timestamp, request.body, signature, now=timestamp + 300)
    assert SECRET not in str(headers)


def test_sign_and_verify_by_hand():
    body = b'{"a":1}'
    digest = hmac.new(b"k" * 16, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("k" * 16, 1_700_000_000, body) == f"sha256={digest}"
    assert verify("k" * 16, "1700000000", body, f"sha256={digest}", now=1_700_000_000)
    # A timestamp ahead of the receiver's clock is refused like an old one.
    assert not verify("k" * 16, 1_700_000_000, body, f"sha256={digest}", now=1_699_999_000)
    assert verify("k" * 16, 1_700_000_000, body, f"sha256={digest}", now=1_700_000_010, tolerance_seconds=10)
    assert not verify("k" * 16, 1_700_000_000, body, f"sha256={digest}", now=1_700_000_011, tolerance_seconds=10)
    assert not verify("k" * 16, "yesterday", body, f"sha256={digest}", now=1_700_000_000)
    assert not verify("k" * 16, 1_700_000_000, body, digest, now=1_700_000_000)


async def test_5xx_answers_are_retried_under_one_delivery_id(receiver, sleeps):
    receiver.script = [(503, {}, "busy"), (502, {}, "bad gateway")]
    notifier = Notifier(settings(webhook_signing_secret=SECRET), sleep=sleeps)
    outcome = await notifier.deliver(webhook(receiver), notification())
    second = await notifier.deliver(webhook(receiver), notification())
    await notifier.close()

    assert outcome == DeliveryOutcome(True, 3, None)
    assert second == DeliveryOutcome(True, 1, None)
    first_three, last = receiver.requests[:3], receiver.requests[3]
    ids = {r.headers["X-Analytics-Delivery"] for r in first_three}
    assert len(ids) == 1
    assert last.headers["X-Analytics-Delivery"] not in ids
    for request in first_three:
        h = request.headers
        assert request.body == orjson.dumps(PAYLOAD)
        assert verify(SECRET, h["X-Analytics-Timestamp"], request.body, h["X-Analytics-Signature"], now=time.time())
    assert len(sleeps.delays) == 2
    assert_doubling(sleeps.delays, 0.01)


async def test_a_429_waits_its_retry_after(receiver, sleeps):
    receiver.script = [(429, {"Retry-After": "1"}, "slow down")]
    notifier = Notifier(settings(webhook_signing_secret=SECRET), sleep=sleeps)
    outcome = await notifier.deliver(webhook(receiver), notification())
    await notifier.close()
    assert outcome == DeliveryOutcome(True, 2, None)
    assert sleeps.delays == [1.0]


async def test_a_retry_after_date_and_a_huge_retry_after(receiver, sleeps):
    when = datetime.now(UTC) + timedelta(seconds=30)
    receiver.script = [
        (503, {"Retry-After": format_datetime(when, usegmt=True)}, ""),
        (429, {"Retry-After": "86400"}, ""),
    ]
    notifier = Notifier(settings(webhook_signing_secret=SECRET), sleep=sleeps)
    outcome = await notifier.deliver(webhook(receiver), notification())
    await notifier.close()
    assert outcome == DeliveryOutcome(True, 3, None)
    first, second = sleeps.delays
    assert 27 <= first <= 30
    assert second == MAX_RETRY_DELAY_SECONDS


async def test_a_4xx_answer_is_final(receiver, sleeps):
    receiver.script = [(400, {}, "invalid payload: " + "x" * 500)]
    notifier = Notifier(settings(webhook_signing_secret=SECRET), sleep=sleeps)
    outcome = await notifier.deliver(webhook(receiver), notification())
    await notifier.close()
    # The receiver's answer is quoted only in part.
    assert outcome == DeliveryOutcome(False, 1, "the receiver answered HTTP 400: invalid payload: " + "x" * 63 + "…")
    assert len(receiver.requests) == 1
    assert sleeps.delays == []


async def test_a_redirect_is_not_followed(receiver, sleeps):
    receiver.script = [(302, {"Location": receiver.url("/elsewhere")}, "")]
    notifier = Notifier(settings(webhook_signing_secret=SECRET), sleep=sleeps)
    outcome = await notifier.deliver(webhook(receiver), notification())
    await notifier.close()
    assert outcome == DeliveryOutcome(False, 1, "the receiver answered HTTP 302 (redirects are not followed)")
    assert [r.path for r in receiver.requests] == ["/hook"]


async def test_a_slow_receiver_times_out_and_is_retried(receiver, sleeps):
    receiver.delay = 1.0
    notifier = Notifier(
        settings(webhook_signing_secret=SECRET, notify_timeout_seconds=0.2, notify_retries=1), sleep=sleeps
    )
    outcome = await notifier.deliver(webhook(receiver), notification())
    await notifier.close()
    assert outcome == DeliveryOutcome(False, 2, "no answer within 0.2 s")
    assert len(receiver.requests) == 2


async def test_an_unreachable_receiver_is_retried(sleeps):
    target = NotificationTarget(Channel.WEBHOOK, f"http://127.0.0.1:{free_port()}/hook")
    notifier = Notifier(settings(webhook_signing_secret=SECRET, notify_retries=2), sleep=sleeps)
    outcome = await notifier.deliver(target, notification())
    await notifier.close()
    assert (outcome.delivered, outcome.attempts) == (False, 3)
    assert outcome.error is not None and outcome.error.startswith("the connection failed: ConnectError")
    assert "://" not in outcome.error
    assert_doubling(sleeps.delays, 0.01)


async def test_no_webhook_is_sent_without_a_signing_secret(receiver, sleeps):
    notifier = Notifier(settings(webhook_signing_secret=None), sleep=sleeps)
    outcome = await notifier.deliver(webhook(receiver), notification())
    await notifier.close()
    assert outcome == DeliveryOutcome(
        False, 0, "webhooks are signed and no signing secret is configured (ANALYTICS_WEBHOOK_SIGNING_SECRET)"
    )
    assert receiver.requests == []


# --- Slack and Teams ----------------------------------------------------------------------------


async def test_slack_gets_text_and_a_mrkdwn_section(receiver):
    notifier = Notifier(settings())
    subject = "Report 'Clicks & <views>' is ready"
    target = NotificationTarget(Channel.SLACK, receiver.url("/services/T000/B000/XXXX"))
    outcome = await notifier.deliver(target, notification(subject=subject))
    await notifier.close()

    assert outcome == DeliveryOutcome(True, 1, None)
    [request] = receiver.requests
    assert request.path == "/services/T000/B000/XXXX"
    assert request.headers["Content-Type"] == "application/json"
    assert "X-Analytics-Signature" not in request.headers
    message = orjson.loads(request.body)
    assert set(message) == {"text", "blocks"}
    assert "Clicks &amp; &lt;views&gt;" in message["text"]
    assert LINK in message["text"]
    [block] = message["blocks"]
    assert block["type"] == "section"
    assert block["text"]["type"] == "mrkdwn"
    assert block["text"]["text"] == (
        "*Report 'Clicks &amp; &lt;views&gt;' is ready*\n"
        "The run of 2024-05-06 finished: 1,234 rows.\n"
        f"<{LINK}|Download the report>"
    )


async def test_teams_gets_an_adaptive_card(receiver):
    notifier = Notifier(settings())
    target = NotificationTarget(Channel.TEAMS, receiver.url("/workflows/abc"))
    outcome = await notifier.deliver(target, notification())
    await notifier.close()

    assert outcome == DeliveryOutcome(True, 1, None)
    message = orjson.loads(receiver.requests[0].body)
    assert message["type"] == "message"
    [attachment] = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert [(b["type"], b["text"]) for b in card["body"]] == [
        ("TextBlock", "Report 'Weekly performance' is ready"),
        ("TextBlock", "The run of 2024-05-06 finished: 1,234 rows."),
    ]
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Download the report", "url": LINK}]


@pytest.mark.parametrize("channel", [Channel.SLACK, Channel.TEAMS])
async def test_chat_webhooks_are_retried_like_webhooks(receiver, sleeps, channel):
    receiver.script = [(500, {}, "oops"), (404, {}, "no_service")]
    notifier = Notifier(settings(), sleep=sleeps)
    outcome = await notifier.deliver(NotificationTarget(channel, receiver.url()), notification())
    await notifier.close()
    assert outcome == DeliveryOutcome(False, 2, "the receiver answered HTTP 404: no_service")
    assert len(sleeps.delays) == 1


# --- targets ------------------------------------------------------------------------------------


def test_targets_parse():
    assert NotificationTarget.parse({"channel": "email", "target": " Ops@Example.COM "}, field="n[0]") == (
        NotificationTarget(Channel.EMAIL, "Ops@example.com")
    )
    assert NotificationTarget.parse({"channel": "webhook", "target": "https://h.example/x?y=1"}, field="n") == (
        NotificationTarget(Channel.WEBHOOK, "https://h.example/x?y=1")
    )
    assert NotificationTarget(Channel.SLACK, "https://hooks.slack.com/a").to_dict() == {
        "channel": "slack",
        "target": "https://hooks.slack.com/a",
    }


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ("ops@example.com", "notifications[1]"),
        ({"channel": "sms", "target": "+15550100"}, "notifications[1].channel"),
        ({"target": "ops@example.com"}, "notifications[1].channel"),
        ({"channel": "email", "target": "ops@example.com", "cc": "x"}, "notifications[1].cc"),
        ({"channel": "email"}, "notifications[1].target"),
        ({"channel": "email", "target": 7}, "notifications[1].target"),
        ({"channel": "email", "target": "not an address"}, "notifications[1].target"),
        ({"channel": "email", "target": "ops@example.com\r\nBcc: x@evil.example"}, "notifications[1].target"),
        ({"channel": "email", "target": "Ops <ops@example.com>"}, "notifications[1].target"),
        ({"channel": "email", "target": "a..b@example.com"}, "notifications[1].target"),
        ({"channel": "webhook", "target": "ftp://example.com/x"}, "notifications[1].target"),
        ({"channel": "webhook", "target": "example.com/hook"}, "notifications[1].target"),
        ({"channel": "slack", "target": "https://user:pw@example.com/"}, "notifications[1].target"),
        ({"channel": "teams", "target": "https:///no-host"}, "notifications[1].target"),
        ({"channel": "webhook", "target": "https://example.com:99999/"}, "notifications[1].target"),
        ({"channel": "webhook", "target": "https://example.com/a b"}, "notifications[1].target"),
        ({"channel": "webhook", "target": "https://example.com/#frag"}, "notifications[1].target"),
    ],
)
def test_a_bad_target_names_its_field(data, named):
    with pytest.raises(InvalidRequest) as caught:
        NotificationTarget.parse(data, field="notifications[1]")
    assert caught.value.details == {"field": named}
    assert caught.value.message.startswith(named + " ")


def test_a_notifications_list():
    good = [{"channel": "email", "target": "a@example.com"}, {"channel": "teams", "target": "https://t.example/"}]
    assert parse_targets(good) == [
        NotificationTarget(Channel.EMAIL, "a@example.com"),
        NotificationTarget(Channel.TEAMS, "https://t.example/"),
    ]
    for data, named in [
        ({"channel": "email"}, "notifications"),
        ([*good, {"channel": "email", "target": "a@EXAMPLE.com"}], "notifications[2]"),
        ([{"channel": "email", "target": f"u{i}@example.com"} for i in range(21)], "notifications"),
        ([good[0], {"channel": "slack", "target": "mailto:x"}], "notifications[1].target"),
    ]:
        with pytest.raises(InvalidRequest) as caught:
            parse_targets(data)
        assert caught.value.details == {"field": named}
