"""The privacy rules ingest applies to each event before it is stored (docs/security.md#privacy).

In order, for the valid events of a request:

1. **Suppression**: an event whose ``user_id`` belongs to an erased user is refused, with an error
   naming ``user_id`` (code ``erased_user``), like any other refused field.
2. **Consent**: an event whose ``consent`` says ``"analytics": false`` is dropped
   (``ANALYTICS_CONSENT_POLICY=drop``: answered, counted in ``dropped``, never stored) or stored
   anonymized (``anonymize``): no user id, no session id, no address, no region or city, and the user
   agent reduced to the families the enrichment derived from it (``Chrome; Windows; desktop``).
3. **Pseudonymization**: with ``ANALYTICS_USER_ID_HASH_SALT`` set, the user id is replaced by its
   pseudonym (core/user_ids.py).
4. **Addresses**: ``ANALYTICS_IP_HANDLING=remove`` stores no address at all (the place is still
   looked up from it first); ``truncate`` keeps what ``ANALYTICS_ANONYMIZE_IP`` says.

Only the ``analytics`` purpose of ``consent`` is read; ``consent`` itself is never stored. A request
without consent flags, erased users or a salt passes through without a copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from core.errors import FieldError
from core.models import EventIn
from core.settings import Settings
from core.user_ids import pseudonym

ERASED_USER_CODE = "erased_user"
ERASED_USER_MESSAGE = (
    "belongs to a user whose data was erased at their request; events for this user are no longer accepted"
)
CONSENT_PURPOSE = "analytics"


class ErasedUsers(Protocol):
    """What the screen asks of the suppression list (storage/suppression_list.py)."""

    def __len__(self) -> int: ...
    def holds(self, user_id: str) -> bool: ...


@dataclass(slots=True)
class ScreenedEvents:
    """The events to store, with their index in the request; the refused ones as errors; how many were
    dropped for want of consent; and the positions in ``events`` of those to store anonymized."""

    events: list[tuple[int, EventIn]]
    errors: list[FieldError] = field(default_factory=list)
    dropped: int = 0
    anonymized: list[int] = field(default_factory=list)


def without_consent(event: EventIn) -> bool:
    """Whether the event says its user did not consent to analytics."""
    consent = event.get("consent")
    return bool(consent) and consent.get(CONSENT_PURPOSE) is False  # type: ignore[union-attr]


class PrivacyScreen:
    def __init__(self, settings: Settings, erased: ErasedUsers | None = None) -> None:
        self._drop = settings.consent_policy == "drop"
        self._salt = settings.user_id_hash_salt
        self._remove_addresses = settings.ip_handling == "remove"
        self._erased = erased

    def screen(self, events: list[tuple[int, EventIn]]) -> ScreenedEvents:
        erased = self._erased if self._erased is not None and len(self._erased) else None
        salt = self._salt
        if erased is None and not salt and not any("consent" in event for _, event in events):
            return ScreenedEvents(events)
        out = ScreenedEvents([])
        for index, event in events:
            user_id = event.get("user_id")
            if user_id and erased is not None and erased.holds(user_id):
                out.errors.append(
                    FieldError(index=index, field="user_id", message=ERASED_USER_MESSAGE, code=ERASED_USER_CODE)
                )
                continue
            if without_consent(event):
                if self._drop:
                    out.dropped += 1
                    continue
                out.anonymized.append(len(out.events))
            elif user_id and salt:
                event["user_id"] = pseudonym(user_id, salt)
            out.events.append((index, event))
        return out

    def finish_columns(self, columns: dict[str, Any], anonymized: list[int]) -> None:
        """Apply the address rule and the anonymization to the columns ingest built (enrichment done:
        the place and the device families come from the full address and user agent)."""
        if self._remove_addresses:
            columns["ip_address"] = [""] * len(columns["ip_address"])
        if not anonymized:
            return
        browsers, systems, devices = columns["browser"], columns["os"], columns["device_type"]
        for name in ("user_id", "session_id", "ip_address", "region", "city"):
            values = columns[name]
            for at in anonymized:
                values[at] = ""
        agents = columns["user_agent"]
        for at in anonymized:
            if agents[at]:
                agents[at] = f"{browsers[at]}; {systems[at]}; {devices[at]}"
