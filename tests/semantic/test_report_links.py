"""Signed report download links (semantic/reports.py LinkSigner): any signature text a client sends is
checked, never an error of the service's own."""

from __future__ import annotations

import pytest

from core.errors import Forbidden
from semantic.reports import LinkSigner

SIGNER = LinkSigner(b"a test signing secret")


def test_a_signed_link_is_accepted_until_it_expires() -> None:
    signature = SIGNER.sign("rep_1", "run_1", 1_000)
    SIGNER.check("rep_1", "run_1", 1_000, signature, now=999)
    with pytest.raises(Forbidden, match="expired"):
        SIGNER.check("rep_1", "run_1", 1_000, signature, now=1_001)


@pytest.mark.parametrize("signature", ["", "00", "\r\u00d3I\U0001f3f9\u008a", "é" * 64, "x" * 10_000])
def test_any_other_signature_is_refused_as_forbidden(signature: str) -> None:
    with pytest.raises(Forbidden, match="not valid"):
        SIGNER.check("rep_1", "run_1", 1_000, signature, now=0)
