"""User ids as the service keeps them (docs/security.md#privacy).

- ``pseudonym``: with ``ANALYTICS_USER_ID_HASH_SALT`` set, a user id is stored as a keyed hash of it
  (HMAC-SHA256 under the salt, written ``uh_`` + 32 hex digits) instead of as sent. The same id and
  salt always give the same pseudonym, so every per-user figure still works; a new salt gives every
  user a new one.
- ``stored_forms``: every form an id may be stored under: as sent (no salt, or before one was set),
  and its pseudonym under the current salt and each previous one. Erasure and access requests look
  for all of them.
- ``suppression_digest``: the SHA-256 of an id, as the list of erased users holds it, so that list
  never holds the id itself.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Iterable

PSEUDONYM_PREFIX = "uh_"
# 128 bits of the HMAC: no two users of any platform share a pseudonym by chance.
_PSEUDONYM_HEX_DIGITS = 32
_SUPPRESSION_DOMAIN = b"analytics-erased-user\x00"


@functools.lru_cache(maxsize=65_536)
def pseudonym(user_id: str, salt: str) -> str:
    """The stored form of ``user_id`` under ``salt`` (cached: a user's events repeat the id)."""
    digest = hmac.new(salt.encode(), user_id.encode(), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:_PSEUDONYM_HEX_DIGITS]


def stored_forms(user_id: str, salt: str, previous_salts: Iterable[str] = ()) -> list[str]:
    """The id as given and its pseudonym under each salt, without repeats, the id first."""
    forms = [user_id]
    for each in (salt, *previous_salts):
        if each and (form := pseudonym(user_id, each)) not in forms:
            forms.append(form)
    return forms


def suppression_digest(user_id: str) -> bytes:
    """SHA-256 of ``user_id`` (domain-separated): what the suppression list holds for it."""
    return hashlib.sha256(_SUPPRESSION_DOMAIN + user_id.encode()).digest()
