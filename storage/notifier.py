"""Notifications of finished report runs: e-mail over SMTP, signed webhooks, Slack and Teams incoming webhooks.

A report lists its targets (``{"channel": "email", "target": "ops@example.com"}``); each is delivered on
its own, retried with exponential backoff and jitter while the failure is transient (a connection error,
a timeout, HTTP 408/429/5xx, an SMTP 4xx reply) and given up at once when it is not (another HTTP 4xx, an
SMTP 5xx reply). A delivery never raises: its outcome says whether it arrived, after how many attempts,
and why not.

Webhooks are signed like Stripe's: ``X-Analytics-Signature: sha256=<hex>`` is the HMAC-SHA256 of
``"<timestamp>.<body>"`` under ``ANALYTICS_WEBHOOK_SIGNING_SECRET``, the timestamp sent in
``X-Analytics-Timestamp``. A receiver recomputes it over the raw body (``verify``), compares in constant
time, and refuses an old timestamp, so a captured request cannot be replayed later. Without a secret no
webhook is sent at all: an unsigned request could be forged by anyone who knows the receiver's URL.

Error strings name what failed (an HTTP status, an SMTP reply code, a network error) and at most a short
prefix of what the remote said; never a secret, and never a target URL (Slack and Teams URLs are tokens).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import random
import re
import smtplib
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parsedate_to_datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson

from core.errors import InvalidRequest
from core.settings import Settings

log = logging.getLogger("analytics.notifier")

REPORT_GENERATED = "analytics.report_generated"
SIGNATURE_SCHEME = "sha256"
# How old (or how far ahead) a signed timestamp a receiver should accept.
DEFAULT_TOLERANCE_SECONDS = 300

# A delay between two attempts, whether from the backoff or a server's Retry-After, never exceeds this.
MAX_RETRY_DELAY_SECONDS = 120.0
# The backoff's n-th delay is base * 2**(n-1), stretched by a random factor up to this, so that the
# deliveries that failed together do not all come back at the same instant.
_JITTER = 0.25
# A report names at most this many targets.
MAX_TARGETS = 20
# How much of a remote's answer an error string quotes.
_REMOTE_PREFIX_CHARS = 80
_MAX_URL_CHARS = 2048
_MAX_SUBJECT_CHARS = 250
# Slack refuses a section whose text is longer.
_SLACK_SECTION_CHARS = 3000

# A plain address (RFC 5321 dot-atom local part, LDH domain labels); quoted local parts, comments, display
# names and non-ASCII addresses are not accepted, so the address goes into headers as it is.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"^(?P<local>{_ATOM}(?:\.{_ATOM})*)@(?P<domain>{_LABEL}(?:\.{_LABEL})*)$")


class Channel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"
    SLACK = "slack"
    TEAMS = "teams"


_CHANNEL_NAMES = frozenset(c.value for c in Channel)


@dataclass(frozen=True, slots=True)
class NotificationTarget:
    """One entry of a report's ``notifications`` list: an e-mail address, or the http(s) URL of a webhook."""

    channel: Channel
    target: str

    @classmethod
    def parse(cls, data: object, *, field: str) -> NotificationTarget:
        """``{"channel": ..., "target": ...}`` checked; InvalidRequest naming the field at fault
        (``<field>.channel``, ``<field>.target``) otherwise."""
        if not isinstance(data, Mapping):
            raise _invalid(field, "must be an object with a channel and a target")
        for key in data:
            if key not in ("channel", "target"):
                raise _invalid(f"{field}.{key}", "is not a field of a notification (channel, target)")
        name = data.get("channel")
        if not isinstance(name, str) or name not in _CHANNEL_NAMES:
            raise _invalid(f"{field}.channel", f"must be one of {', '.join(Channel)}")
        channel = Channel(name)
        target = data.get("target")
        if not isinstance(target, str) or not target.strip():
            raise _invalid(f"{field}.target", "must be a non-empty string")
        target = target.strip()
        if channel is Channel.EMAIL:
            return cls(channel, _email_address(target, f"{field}.target"))
        return cls(channel, _http_url(target, f"{field}.target"))

    def to_dict(self) -> dict[str, str]:
        return {"channel": self.channel.value, "target": self.target}


def parse_targets(data: object, *, field: str = "notifications") -> list[NotificationTarget]:
    """A report's whole ``notifications`` list: at most MAX_TARGETS entries, none repeated."""
    if not isinstance(data, list):
        raise _invalid(field, "must be a list of {channel, target} objects")
    if len(data) > MAX_TARGETS:
        raise _invalid(field, f"may name at most {MAX_TARGETS} targets")
    targets: list[NotificationTarget] = []
    for index, item in enumerate(data):
        target = NotificationTarget.parse(item, field=f"{field}[{index}]")
        if target in targets:
            raise _invalid(f"{field}[{index}]", f"repeats {field}[{targets.index(target)}]")
        targets.append(target)
    return targets


@dataclass(frozen=True, slots=True)
class Attachment:
    file_name: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Notification:
    """What every channel says about one finished run, each in its own form."""

    subject: str
    text: str
    # A download link (signed, expiring): always in the message when given.
    link: str | None
    # Attached to e-mails up to ANALYTICS_NOTIFY_ATTACHMENT_MAX_BYTES; the other channels only link.
    attachment: Attachment | None
    # The JSON event a webhook receives: {"event": "analytics.report_generated", "report_id", ...}.
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    delivered: bool
    attempts: int
    error: str | None


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Analytics-Signature`` value of ``body`` sent at ``timestamp`` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_SCHEME}={digest}"


def verify(
    secret: str,
    timestamp: int | str,
    body: bytes,
    signature: str,
    *,
    now: float,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """Whether ``signature`` is this secret's signature of ``body`` at ``timestamp``, and ``timestamp``
    is within ``tolerance_seconds`` of ``now`` (both ways: a clock ahead is as suspicious as a replay).

    ``timestamp`` and ``signature`` are the headers as received; ``body`` the raw bytes, before any
    JSON parsing (a re-serialized body would not match)."""
    try:
        seconds = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs(now - seconds) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, seconds, body).encode(), signature.strip().encode())


@dataclass(frozen=True, slots=True)
class _Try:
    """One attempt's result: error None = delivered."""

    error: str | None = None
    transient: bool = False
    retry_after: float | None = None


_DELIVERED = _Try()


class Notifier:
    def __init__(
        self,
        settings: Settings,
        *,
        http: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._settings = settings
        self._sleep = sleep
        self._owns_http = http is None
        # Redirects are not followed: a signed event goes to the URL that was configured, nowhere else.
        self._http = http or httpx.AsyncClient(
            timeout=settings.notify_timeout_seconds,
            follow_redirects=False,
            headers={"User-Agent": "analytics-service-notifier"},
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Notifier:
        return cls(settings)

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def deliver(self, target: NotificationTarget, notification: Notification) -> DeliveryOutcome:
        """Send ``notification`` to ``target``, retrying transient failures; never raises."""
        try:
            match target.channel:
                case Channel.EMAIL:
                    return await self._email(target.target, notification)
                case Channel.WEBHOOK:
                    return await self._webhook(target.target, notification)
                case Channel.SLACK:
                    return await self._chat(Channel.SLACK, target.target, slack_message(notification))
                case Channel.TEAMS:
                    return await self._chat(Channel.TEAMS, target.target, teams_message(notification))
        except Exception as exc:
            # A bug here must not stop the other deliveries of the run, nor leave the row pending.
            log.exception("notification over %s failed unexpectedly", target.channel.value)
            return DeliveryOutcome(False, 0, f"unexpected error: {type(exc).__name__}")

    # --- retries ----------------------------------------------------------------------------------

    async def _with_retries(self, attempt: Callable[[], Awaitable[_Try]], channel: Channel) -> DeliveryOutcome:
        attempts = 0
        while True:
            attempts += 1
            result = await attempt()
            if result.error is None:
                return DeliveryOutcome(True, attempts, None)
            if not result.transient or attempts > self._settings.notify_retries:
                log.warning("notification over %s failed after %d attempt(s): %s", channel, attempts, result.error)
                return DeliveryOutcome(False, attempts, result.error)
            await self._sleep(self.retry_delay(attempts, result.retry_after))

    def retry_delay(self, failed_attempts: int, retry_after: float | None = None) -> float:
        """The wait after the ``failed_attempts``-th failure: the backoff (doubling, with jitter), at
        least what the server asked for in Retry-After, never more than MAX_RETRY_DELAY_SECONDS."""
        backoff = self._settings.notify_backoff_seconds * 2 ** (failed_attempts - 1)
        delay = backoff * random.uniform(1.0, 1.0 + _JITTER)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, MAX_RETRY_DELAY_SECONDS)

    # --- e-mail -----------------------------------------------------------------------------------

    async def _email(self, address: str, notification: Notification) -> DeliveryOutcome:
        settings = self._settings
        if not settings.smtp_host:
            return DeliveryOutcome(False, 0, "no SMTP server is configured (ANALYTICS_SMTP_HOST)")
        tls = settings.smtp_ssl or settings.smtp_starttls
        if settings.smtp_username and not tls and not _loopback(settings.smtp_host):
            return DeliveryOutcome(
                False,
                0,
                "ANALYTICS_SMTP_USERNAME is set but neither ANALYTICS_SMTP_STARTTLS nor ANALYTICS_SMTP_SSL is: "
                "the password would cross the network in clear",
            )
        message = email_message(
            notification,
            sender=settings.smtp_from,
            recipient=address,
            attachment_max_bytes=settings.notify_attachment_max_bytes,
        )

        async def attempt() -> _Try:
            return await asyncio.to_thread(self._send_email, message, address)

        return await self._with_retries(attempt, Channel.EMAIL)

    def _send_email(self, message: EmailMessage, address: str) -> _Try:
        """One SMTP session, in a worker thread (smtplib blocks)."""
        settings = self._settings
        host, port, timeout = settings.smtp_host or "", settings.smtp_port, settings.smtp_timeout_seconds
        try:
            smtp: smtplib.SMTP
            if settings.smtp_ssl:
                smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(host, port, timeout=timeout)
            with smtp:
                if settings.smtp_starttls and not settings.smtp_ssl:
                    smtp.starttls(context=ssl.create_default_context())
                if settings.smtp_username:
                    smtp.login(settings.smtp_username, settings.smtp_password or "")
                smtp.send_message(message, from_addr=settings.smtp_from, to_addrs=[address])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (0, b""))
            return _smtp_reply("RCPT TO", code, reply)
        except smtplib.SMTPResponseException as exc:
            return _smtp_reply(_SMTP_STAGES.get(type(exc), "the session"), exc.smtp_code, exc.smtp_error)
        except smtplib.SMTPServerDisconnected:
            return _Try("the SMTP server closed the connection", transient=True)
        except smtplib.SMTPException as exc:  # STARTTLS or AUTH not offered, no usable AUTH method
            return _Try(f"SMTP: {_prefix(str(exc)) or type(exc).__name__}", transient=False)
        except ssl.SSLCertVerificationError as exc:
            return _Try(f"the SMTP server's certificate was refused: {exc.verify_message}", transient=False)
        except OSError as exc:  # refused, unreachable, timed out, TLS broken off
            return _Try(f"SMTP connection failed: {_describe(exc)}", transient=True)
        return _DELIVERED

    # --- webhooks ---------------------------------------------------------------------------------

    async def _webhook(self, url: str, notification: Notification) -> DeliveryOutcome:
        secret = self._settings.webhook_signing_secret
        if not secret:
            return DeliveryOutcome(
                False, 0, "webhooks are signed and no signing secret is configured (ANALYTICS_WEBHOOK_SIGNING_SECRET)"
            )
        body = orjson.dumps(notification.payload)
        event = str(notification.payload.get("event") or REPORT_GENERATED)
        # One id for every attempt of this delivery: a receiver that got an earlier attempt skips the next.
        delivery_id = str(uuid.uuid4())

        async def attempt() -> _Try:
            # A fresh timestamp (and signature) per attempt: a retry after a long backoff still verifies.
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "X-Analytics-Event": event,
                "X-Analytics-Delivery": delivery_id,
                "X-Analytics-Timestamp": str(timestamp),
                "X-Analytics-Signature": sign(secret, timestamp, body),
            }
            return await self._post(url, body, headers)

        return await self._with_retries(attempt, Channel.WEBHOOK)

    async def _chat(self, channel: Channel, url: str, message: dict[str, Any]) -> DeliveryOutcome:
        """Slack and Teams: unsigned (their webhooks do not check signatures; the URL is the secret)."""
        body = orjson.dumps(message)
        headers = {"Content-Type": "application/json"}
        return await self._with_retries(lambda: self._post(url, body, headers), channel)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> _Try:
        timeout = self._settings.notify_timeout_seconds
        try:
            # The whole exchange is bounded, not only each read: a receiver cannot hold a delivery by
            # trickling its answer.
            async with asyncio.timeout(timeout), self._http.stream("POST", url, content=body, headers=headers) as r:
                if 200 <= r.status_code < 300:
                    return _DELIVERED
                said = await _answer_prefix(r)
                error = f"the receiver answered HTTP {r.status_code}" + (f": {said}" if said else "")
                if 300 <= r.status_code < 400:
                    return _Try(error + " (redirects are not followed)", transient=False)
                transient = r.status_code in (408, 429) or r.status_code >= 500
                return _Try(error, transient=transient, retry_after=_retry_after(r.headers.get("Retry-After")))
        except TimeoutError:
            return _Try(f"no answer within {timeout:g} s", transient=True)
        except httpx.TimeoutException:
            return _Try(f"no answer within {timeout:g} s", transient=True)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            return _Try(f"the URL cannot be used: {type(exc).__name__}", transient=False)
        except httpx.TransportError as exc:  # connect, read, write, protocol errors
            return _Try(f"the connection failed: {_describe(exc)}", transient=True)


# --- the messages of each channel -------------------------------------------------------------------


def email_message(
    notification: Notification, *, sender: str, recipient: str, attachment_max_bytes: int
) -> EmailMessage:
    """The e-mail: the text, then the link; the file attached when it is small enough, else only linked."""
    message = EmailMessage()
    message["Subject"] = _one_line(notification.subject)[:_MAX_SUBJECT_CHARS]
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    parts = [notification.text.rstrip()]
    if notification.link:
        parts.append(f"Download: {notification.link}")
    attachment = notification.attachment
    attach = attachment is not None and len(attachment.data) <= attachment_max_bytes
    if attachment is not None and not attach:
        where = "download it from the link above" if notification.link else "no download link is available"
        parts.append(
            f"The file {attachment.file_name} ({len(attachment.data)} bytes) is larger than e-mail attachments "
            f"may be ({attachment_max_bytes} bytes), so it is not attached; {where}."
        )
    message.set_content("\n\n".join(parts) + "\n")
    if attachment is not None and attach:
        maintype, _, subtype = attachment.content_type.partition("/")
        if not maintype or not subtype:
            maintype, subtype = "application", "octet-stream"
        message.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=_one_line(attachment.file_name)
        )
    return message


def slack_message(notification: Notification) -> dict[str, Any]:
    """A Slack-compatible incoming-webhook message: ``text`` for notifications and clients without
    blocks, and one mrkdwn section with the subject, the text and the link."""
    subject, text = _slack_escape(notification.subject), _slack_escape(notification.text)
    lines = [f"*{subject}*", text]
    plain = [subject, text]
    if notification.link:
        lines.append(f"<{_slack_url(notification.link)}|Download the report>")
        plain.append(notification.link)
    section = "\n".join(lines)
    if len(section) > _SLACK_SECTION_CHARS:
        # The link stays whole: it is the point of the message.
        keep = _SLACK_SECTION_CHARS - len(section) + len(text) - 1
        lines[1] = text[: max(keep, 0)] + "…"
        section = "\n".join(lines)
    return {
        "text": "\n".join(plain),
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": section}}],
    }


def teams_message(notification: Notification) -> dict[str, Any]:
    """A Teams-compatible message (incoming webhook or Workflows): an Adaptive Card with the subject and
    the text as TextBlocks and an Action.OpenUrl to the link."""
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": notification.subject, "weight": "Bolder", "size": "Medium", "wrap": True},
            {"type": "TextBlock", "text": notification.text, "wrap": True},
        ],
    }
    if notification.link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Download the report", "url": notification.link}]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


# --- helpers -----------------------------------------------------------------------------------------

_SMTP_STAGES: dict[type[smtplib.SMTPResponseException], str] = {
    smtplib.SMTPConnectError: "the connection",
    smtplib.SMTPHeloError: "HELO",
    smtplib.SMTPAuthenticationError: "AUTH",
    smtplib.SMTPSenderRefused: "MAIL FROM",
    smtplib.SMTPDataError: "DATA",
}


def _smtp_reply(stage: str, code: int, reply: bytes | str) -> _Try:
    # RFC 5321: 4yz is a transient negative completion (try again), 5yz a permanent one.
    said = _prefix(reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply))
    error = f"the SMTP server answered {code} to {stage}" + (f": {said}" if said else "")
    return _Try(error, transient=not 500 <= code < 600)


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (RFC 9110: delay-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


async def _answer_prefix(response: httpx.Response) -> str:
    """The start of an answer's body, read no further than needed."""
    data = b""
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) >= _REMOTE_PREFIX_CHARS * 4:
            break
    return _prefix(data.decode(errors="replace"))


def _prefix(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _REMOTE_PREFIX_CHARS else text[:_REMOTE_PREFIX_CHARS] + "…"


def _describe(exc: BaseException) -> str:
    """An exception's type and message, without the message when it quotes a URL (a target can be a token)."""
    text = str(exc)
    if not text or "://" in text:
        return type(exc).__name__
    return f"{type(exc).__name__}: {_prefix(text)}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn gives &, < and > meaning; the rest is shown as written.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_url(url: str) -> str:
    return quote(url, safe=":/?#[]@!$&'()*+,;=%~-._")


def _loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _invalid(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{field} {message}", details={"field": field})


def _email_address(text: str, field: str) -> str:
    match = _EMAIL.match(text)
    if match is None or len(text) > 254 or len(match["local"]) > 64:
        raise _invalid(field, "must be an e-mail address such as ops@example.com")
    return f"{match['local']}@{match['domain'].lower()}"


def _http_url(text: str, field: str) -> str:
    if len(text) > _MAX_URL_CHARS or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in text):
        raise _invalid(field, f"must be an http(s) URL of at most {_MAX_URL_CHARS} characters, without spaces")
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 - reading it validates it
    except ValueError:
        raise _invalid(field, "has an invalid port") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise _invalid(field, "must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise _invalid(field, "must not carry credentials (user:password@); webhooks are authenticated by signature")
    if parts.fragment:
        raise _invalid(field, "must not have a #fragment")
    return text
