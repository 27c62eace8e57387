"""core/user_ids.py: pseudonyms are stable per salt and differ across salts; an id's stored forms; the
suppression digest."""

from __future__ import annotations

import hashlib
import hmac
import re

from core.user_ids import pseudonym, stored_forms, suppression_digest


def test_a_pseudonym_is_the_keyed_hash_of_the_id() -> None:
    expected = "uh_" + hmac.new(b"salt-1", b"u-7", hashlib.sha256).hexdigest()[:32]
    assert pseudonym("u-7", "salt-1") == expected
    assert re.fullmatch(r"uh_[0-9a-f]{32}", expected)


def test_the_same_id_and_salt_give_the_same_pseudonym_and_another_salt_another() -> None:
    assert pseudonym("u-7", "salt-1") == pseudonym("u-7", "salt-1")
    assert pseudonym("u-7", "salt-1") != pseudonym("u-8", "salt-1")
    assert pseudonym("u-7", "salt-1") != pseudonym("u-7", "salt-2")


def test_stored_forms_are_the_id_then_its_pseudonym_under_each_salt() -> None:
    assert stored_forms("u-7", "") == ["u-7"]
    assert stored_forms("u-7", "new", ["old", "", "new"]) == ["u-7", pseudonym("u-7", "new"), pseudonym("u-7", "old")]


def test_the_suppression_digest_is_a_sha256_that_is_not_the_plain_hash_of_the_id() -> None:
    digest = suppression_digest("u-7")
    assert len(digest) == 32 and digest == suppression_digest("u-7")
    assert digest != hashlib.sha256(b"u-7").digest()
    assert digest != suppression_digest("u-8")
