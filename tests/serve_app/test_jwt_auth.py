"""JWT bearer tokens (serve_app/jwt_tokens.py through serve_app/auth.py): HS256, RS256 and ES256 with a
PEM key and with a JWKS file, every claim check, and the refusals (always 401, never 500)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from pydantic import ValidationError

from core.access import ContentScope, Principal, Role
from core.errors import Unauthenticated
from core.settings import Settings
from serve_app.auth import Authenticator
from serve_app.jwt_tokens import JwtVerifier, looks_like_jwt
from storage.cache import InProcessCache
from tests.graphql.conftest import rest_client
from tests.graphql.fakes import ROLE_KEYS, FakeServices, KnownKeys

SECRET = "a-shared-secret-of-at-least-32-bytes-for-hs256"
AUDIENCE = "analytics-api"
ISSUER = "https://id.example.com"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {"sub": "alice", "role": "analyst", "iat": now, "exp": now + 600}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def token(key: Any, algorithm: str, headers: dict[str, Any] | None = None, **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), key, algorithm=algorithm, headers=headers)


def settings(**fields: Any) -> Settings:
    return Settings(environment="test", **fields)


def verifier(**fields: Any) -> JwtVerifier:
    made = JwtVerifier.from_settings(settings(**fields))
    assert made is not None
    return made


def refusal(check: Callable[[], object]) -> str:
    with pytest.raises(Unauthenticated) as exc:
        check()
    return exc.value.message


@pytest.fixture
def jwks_file(tmp_path: Path, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey) -> Path:
    rsa_jwk = {**RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True), "kid": "rsa-1", "use": "sig"}
    ec_jwk = {**ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True), "kid": "ec-1", "alg": "ES256"}
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [rsa_jwk, ec_jwk]}))
    return path


# ---- accepted tokens ---------------------------------------------------------------------


def test_hs256_with_the_shared_secret() -> None:
    principal = verifier(jwt_hmac_secret=SECRET).verify(token(SECRET, "HS256"))
    assert principal == Principal(key_id="jwt:alice", name="alice", role=Role.ANALYST, scope=ContentScope())
    assert principal.scope.unrestricted


@pytest.mark.parametrize(("which", "algorithm"), [("rsa", "RS256"), ("ec", "ES256")])
def test_rs256_and_es256_with_a_pem_public_key(tmp_path, rsa_key, ec_key, which, algorithm) -> None:
    private = rsa_key if which == "rsa" else ec_key
    pem = tmp_path / "public.pem"
    pem.write_bytes(public_pem(private))
    check = verifier(jwt_public_key_file=pem)
    principal = check.verify(token(private, algorithm, role="viewer"))
    assert (principal.key_id, principal.role) == ("jwt:alice", Role.VIEWER)
    # A kid in the header is fine with a single PEM key (no JWKS to choose from).
    assert check.verify(token(private, algorithm, headers={"kid": "whatever"})).name == "alice"


@pytest.mark.parametrize(("kid", "algorithm"), [("rsa-1", "RS256"), ("ec-1", "ES256")])
def test_rs256_and_es256_from_a_jwks_file_by_kid(jwks_file, rsa_key, ec_key, kid, algorithm) -> None:
    private = rsa_key if kid == "rsa-1" else ec_key
    principal = verifier(jwt_jwks_file=jwks_file).verify(token(private, algorithm, headers={"kid": kid}))
    assert principal.role is Role.ANALYST


def test_audience_and_issuer_when_configured() -> None:
    check = verifier(jwt_hmac_secret=SECRET, jwt_audience=AUDIENCE, jwt_issuer=ISSUER)
    good = token(SECRET, "HS256", aud=[AUDIENCE, "other"], iss=ISSUER)
    assert check.verify(good).name == "alice"


def test_scope_claims_become_the_principal_scope() -> None:
    check = verifier(jwt_hmac_secret=SECRET)
    principal = check.verify(token(SECRET, "HS256", categories=["news", "sport"], content_ids=["c1"]))
    assert principal.scope == ContentScope.of(["news", "sport"], ["c1"])
    only_ids = check.verify(token(SECRET, "HS256", content_ids=["c9"]))
    assert only_ids.scope == ContentScope.of((), ["c9"])


def test_claim_names_come_from_settings() -> None:
    check = verifier(
        jwt_hmac_secret=SECRET,
        jwt_role_claim="https://example.com/role",
        jwt_categories_claim="sections",
        jwt_content_ids_claim="articles",
    )
    principal = check.verify(
        token(SECRET, "HS256", role=None, **{"https://example.com/role": "admin", "sections": ["a"], "articles": ["b"]})
    )
    assert (principal.role, principal.scope) == (Role.ADMIN, ContentScope.of(["a"], ["b"]))


def test_leeway_allows_small_clock_skew() -> None:
    expired_a_moment_ago = token(SECRET, "HS256", exp=int(time.time()) - 5)
    assert verifier(jwt_hmac_secret=SECRET, jwt_leeway_seconds=60).verify(expired_a_moment_ago).name == "alice"
    assert refusal(lambda: verifier(jwt_hmac_secret=SECRET, jwt_leeway_seconds=0).verify(expired_a_moment_ago)) == (
        "JWT has expired"
    )


# ---- refusals ----------------------------------------------------------------------------


def test_expired() -> None:
    expired = token(SECRET, "HS256", exp=int(time.time()) - 3600)
    assert refusal(lambda: verifier(jwt_hmac_secret=SECRET).verify(expired)) == "JWT has expired"


def test_not_before_in_the_future() -> None:
    early = token(SECRET, "HS256", nbf=int(time.time()) + 3600)
    assert refusal(lambda: verifier(jwt_hmac_secret=SECRET).verify(early)) == (
        "JWT is not valid yet: its 'nbf' is in the future"
    )


def test_wrong_audience_and_missing_audience() -> None:
    check = verifier(jwt_hmac_secret=SECRET, jwt_audience=AUDIENCE)
    assert refusal(lambda: check.verify(token(SECRET, "HS256", aud="someone-else"))) == (
        "JWT audience (aud) is wrong: it must include 'analytics-api'"
    )
    assert refusal(lambda: check.verify(token(SECRET, "HS256"))) == "JWT has no 'aud' claim, which is required"
    # Without a configured audience, a token meant for some audience is not taken either.
    unset = verifier(jwt_hmac_secret=SECRET)
    assert refusal(lambda: unset.verify(token(SECRET, "HS256", aud="x"))) == (
        "JWT names an audience (aud), and this service expects none"
    )


def test_wrong_issuer_and_missing_issuer() -> None:
    check = verifier(jwt_hmac_secret=SECRET, jwt_issuer=ISSUER)
    assert refusal(lambda: check.verify(token(SECRET, "HS256", iss="https://evil.example.com"))) == (
        "JWT issuer (iss) is wrong: it must be 'https://id.example.com'"
    )
    assert refusal(lambda: check.verify(token(SECRET, "HS256"))) == "JWT has no 'iss' claim, which is required"


def test_wrong_signature(rsa_key, tmp_path) -> None:
    other_secret = "another-shared-secret-of-at-least-32-bytes"
    assert refusal(lambda: verifier(jwt_hmac_secret=SECRET).verify(token(other_secret, "HS256"))) == (
        "JWT signature is not valid"
    )
    pem = tmp_path / "public.pem"
    pem.write_bytes(public_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    assert refusal(lambda: verifier(jwt_public_key_file=pem).verify(token(rsa_key, "RS256"))) == (
        "JWT signature is not valid"
    )
    # A tampered payload with the original signature.
    good = token(SECRET, "HS256", role="viewer")
    header, _, signature = good.split(".")
    forged_payload = jwt.utils.base64url_encode(json.dumps(claims(role="admin")).encode()).decode()
    forged = f"{header}.{forged_payload}.{signature}"
    assert refusal(lambda: verifier(jwt_hmac_secret=SECRET).verify(forged)) == "JWT signature is not valid"


def test_unknown_kid(jwks_file, rsa_key) -> None:
    check = verifier(jwt_jwks_file=jwks_file)
    assert refusal(lambda: check.verify(token(rsa_key, "RS256", headers={"kid": "rsa-2"}))) == (
        "JWT key id (kid) 'rsa-2' is unknown"
    )
    # Several keys and no kid: the token does not say which one.
    assert refusal(lambda: check.verify(token(rsa_key, "RS256"))) == (
        "JWT has no key id (kid) header; the configured JWKS holds several keys"
    )


def test_a_jwks_key_is_used_only_with_its_own_algorithm(jwks_file, ec_key) -> None:
    # The EC key's kid on an RS256-claiming token: refused whatever the signature.
    forged = token(SECRET, "HS256", headers={"kid": "ec-1"})
    message = refusal(lambda: verifier(jwt_jwks_file=jwks_file, jwt_hmac_secret=SECRET).verify(forged))
    assert message == "JWT algorithm (alg) does not match the key it names"


def test_a_public_key_is_never_an_hmac_secret(tmp_path, rsa_key) -> None:
    # The classic confusion: HS256 signed with the public key's PEM text as the secret.
    pem_bytes = public_pem(rsa_key)
    pem = tmp_path / "public.pem"
    pem.write_bytes(pem_bytes)
    check = verifier(jwt_public_key_file=pem)
    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = jwt.utils.base64url_encode(json.dumps(claims(role="admin")).encode())
    signing_input = header + b"." + payload
    signature = jwt.utils.base64url_encode(hmac.new(pem_bytes, signing_input, hashlib.sha256).digest())
    forged = (signing_input + b"." + signature).decode()
    assert refusal(lambda: check.verify(forged)) == (
        "JWT algorithm HS256 needs a shared secret, and none is configured"
    )


def test_algorithms_outside_the_setting_and_none_are_refused(rsa_key, tmp_path) -> None:
    pem = tmp_path / "public.pem"
    pem.write_bytes(public_pem(rsa_key))
    check = verifier(jwt_public_key_file=pem, jwt_algorithms="RS256")
    assert refusal(lambda: check.verify(token(rsa_key, "RS512"))) == (
        "JWT algorithm 'RS512' is not accepted; accepted: RS256"
    )
    unsigned = jwt.encode(claims(role="admin"), None, algorithm="none")
    assert refusal(lambda: check.verify(unsigned)) == "JWT algorithm 'none' is not accepted; accepted: RS256"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"role": None},
            "JWT has no 'role' claim; it must name a role: admin, analyst, content_manager, viewer, service",
        ),
        (
            {"role": "superuser"},
            "JWT claim 'role' must be one of admin, analyst, content_manager, viewer, service; got 'superuser'",
        ),
        (
            {"role": ["admin"]},
            "JWT claim 'role' must be one of admin, analyst, content_manager, viewer, service; got \"['admin']\"",
        ),
        ({"sub": None}, "JWT has no 'sub' claim, which is required"),
        ({"sub": ""}, "JWT claim 'sub' must be a non-empty string of at most 256 characters"),
        ({"sub": 42}, "JWT claim 'sub' must be a string"),
        ({"exp": None}, "JWT has no 'exp' claim, which is required"),
        ({"exp": "tomorrow"}, "JWT claim 'exp' must be a number"),
        ({"nbf": "soon"}, "JWT claim 'nbf' must be a number"),
        ({"iat": int(time.time()) + 3600}, "JWT is not valid yet: its 'iat' is in the future"),
        ({"categories": "news"}, "JWT claim 'categories' must be a list of at most 100 strings of 1 to 256 characters"),
        ({"categories": [1]}, "JWT claim 'categories' must be a list of at most 100 strings of 1 to 256 characters"),
        (
            {"content_ids": [f"c{n}" for n in range(1001)]},
            "JWT claim 'content_ids' must be a list of at most 1000 strings of 1 to 256 characters",
        ),
        (
            {"content_ids": [""]},
            "JWT claim 'content_ids' must be a list of at most 1000 strings of 1 to 256 characters",
        ),
    ],
)
def test_claim_refusals(overrides: dict[str, Any], message: str) -> None:
    assert refusal(lambda: verifier(jwt_hmac_secret=SECRET).verify(token(SECRET, "HS256", **overrides))) == message


# ---- the Authenticator: which tokens are JWTs, and API keys beside them ----------------------


async def test_the_authenticator_takes_jwts_and_api_keys_side_by_side() -> None:
    auth = Authenticator(KnownKeys(), InProcessCache(), cache_seconds=5, jwt=verifier(jwt_hmac_secret=SECRET))
    by_jwt = await auth.authenticate(f"Bearer {token(SECRET, 'HS256', role='admin')}")
    assert (by_jwt.key_id, by_jwt.role) == ("jwt:alice", Role.ADMIN)
    by_key = await auth.authenticate(f"Bearer {ROLE_KEYS[Role.VIEWER]}")
    assert (by_key.key_id, by_key.role) == ("key_viewer", Role.VIEWER)


async def test_without_jwt_settings_a_jwt_is_refused_saying_so() -> None:
    auth = Authenticator(KnownKeys(), InProcessCache(), cache_seconds=0)
    with pytest.raises(Unauthenticated) as exc:
        await auth.authenticate(f"Bearer {token(SECRET, 'HS256')}")
    assert exc.value.message == (
        "API key is not valid or has been revoked; JWT bearer tokens are not enabled on this service"
    )


def test_which_tokens_look_like_jwts() -> None:
    assert looks_like_jwt("a.b.c")
    assert not looks_like_jwt("ak_abc.def.ghi")
    assert not looks_like_jwt("a.b") and not looks_like_jwt("a.b.c.d")


GARBAGE = [
    "a.b.c",
    "..",
    "x..",
    "eyJ.eyJ.sig",
    "e30.e30.",  # {} header: no alg
    jwt.utils.base64url_encode(b'{"alg":"HS256","kid":7}').decode() + ".e30.c2ln",
    jwt.utils.base64url_encode(b'{"alg":"HS256","crit":["exp"]}').decode() + ".e30.c2ln",
    jwt.utils.base64url_encode(b"[1,2]").decode() + ".e30.c2ln",
    jwt.utils.base64url_encode(b'{"alg":"RS256"}').decode() + ".e30.!!!!",
    jwt.utils.base64url_encode(b'{"alg":"ES256","kid":"ec-1"}').decode() + ".bm90IGpzb24." + "A" * 86,
    jwt.utils.base64url_encode(b'{"alg":"RS256","kid":"rsa-1"}').decode() + ".e30." + "A" * 10,
    jwt.utils.base64url_encode(b'{"alg":"HS256"}').decode() + "." + "A" * 20000 + ".sig",
    "\u00e9.\u00e9.\u00e9",
    jwt.utils.base64url_encode(b'{"alg":"HS256"}').decode()
    + "."
    + jwt.utils.base64url_encode(b'{"exp":1e400,"sub":"a","role":"admin"}').decode()
    + ".c2ln",
    # Signed, with claims no clock can compare.
    jwt.encode({"sub": "a", "role": "admin", "exp": float("inf")}, SECRET, algorithm="HS256"),
    jwt.encode({"sub": "a", "role": "admin", "exp": 1e300, "nbf": 1e300}, SECRET, algorithm="HS256"),
    jwt.encode({"sub": {"x": 1}, "role": "admin", "exp": 2**62}, SECRET, algorithm="HS256"),
]


@pytest.mark.parametrize("garbage", GARBAGE)
def test_garbage_tokens_are_401_never_500(jwks_file, garbage: str) -> None:
    services = FakeServices.build()
    services.auth = Authenticator(
        KnownKeys(), InProcessCache(), cache_seconds=0, jwt=verifier(jwt_hmac_secret=SECRET, jwt_jwks_file=jwks_file)
    )
    client = rest_client(services, None)
    response = client.get("/api/v1/analytics/real-time", headers={"Authorization": f"Bearer {garbage}".encode()})
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "unauthenticated"
    assert garbage not in response.text or len(garbage) < 12


def test_a_valid_jwt_through_the_rest_app_and_a_refused_role() -> None:
    services = FakeServices.build()
    services.auth = Authenticator(KnownKeys(), InProcessCache(), cache_seconds=0, jwt=verifier(jwt_hmac_secret=SECRET))
    viewer = rest_client(services, None, key=token(SECRET, "HS256", role="viewer"))
    assert viewer.get("/api/v1/analytics/real-time").status_code == 200
    refused = viewer.get("/api/v1/analytics/events")
    assert refused.status_code == 403 and "role 'viewer' may not" in refused.json()["message"]
    expired = rest_client(services, None, key=token(SECRET, "HS256", exp=int(time.time()) - 3600))
    answer = expired.get("/api/v1/analytics/real-time")
    assert (answer.status_code, answer.json()["message"]) == (401, "JWT has expired")
    assert answer.headers["www-authenticate"] == "Bearer"


# ---- settings and key files ------------------------------------------------------------------


def test_no_jwt_settings_no_verifier() -> None:
    assert JwtVerifier.from_settings(settings()) is None


def test_a_short_or_stray_hmac_secret_stops_the_settings() -> None:
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        settings(jwt_hmac_secret="too-short")
    with pytest.raises(ValidationError, match="at least 64 bytes for HS256, HS512"):
        settings(jwt_hmac_secret=SECRET, jwt_algorithms="HS256,HS512")
    with pytest.raises(ValidationError, match="no HS\\* algorithm"):
        settings(jwt_hmac_secret=SECRET, jwt_algorithms="RS256")
    with pytest.raises(ValidationError, match="jwt_algorithms"):
        settings(jwt_algorithms="none")


def test_key_files_that_cannot_work_name_their_setting(tmp_path) -> None:
    with pytest.raises(ValidationError, match="ANALYTICS_JWT_PUBLIC_KEY_FILE: .* is not a readable file"):
        settings(jwt_public_key_file=tmp_path / "missing.pem")
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    with pytest.raises(ValueError, match="ANALYTICS_JWT_PUBLIC_KEY_FILE .* is not a PEM public key"):
        JwtVerifier.from_settings(settings(jwt_public_key_file=not_pem))
    small = tmp_path / "small.pem"
    small.write_bytes(public_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)))
    with pytest.raises(ValueError, match="1024 bits; at least 2048"):
        JwtVerifier.from_settings(settings(jwt_public_key_file=small))
    p384 = tmp_path / "p384.pem"
    p384.write_bytes(public_pem(ec.generate_private_key(ec.SECP384R1())))
    with pytest.raises(ValueError, match="key for ES384; none is in ANALYTICS_JWT_ALGORITHMS"):
        JwtVerifier.from_settings(settings(jwt_public_key_file=p384))
    for text, problem in [
        ("not json", "is not JSON"),
        ('{"keys": []}', 'non-empty "keys" list'),
        ('{"keys": [{"kty": "nope", "kid": "k"}]}', "keys\\[0\\] \\(kid 'k'\\) cannot be used"),
    ]:
        jwks = tmp_path / "jwks.json"
        jwks.write_text(text)
        with pytest.raises(ValueError, match=problem):
            JwtVerifier.from_settings(settings(jwt_jwks_file=jwks))


def test_a_jwks_file_is_read_again_for_a_new_kid(jwks_file, rsa_key, caplog) -> None:
    check = verifier(jwt_jwks_file=jwks_file)
    newer = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signed = token(newer, "RS256", headers={"kid": "rsa-2"})
    assert refusal(lambda: check.verify(signed)) == "JWT key id (kid) 'rsa-2' is unknown"
    document = json.loads(jwks_file.read_text())
    document["keys"].append({**RSAAlgorithm.to_jwk(newer.public_key(), as_dict=True), "kid": "rsa-2"})
    jwks_file.write_text(json.dumps(document, indent=1))
    assert check.verify(signed).name == "alice"
    # A file broken later keeps the keys read before (and says so in the log).
    jwks_file.write_text("{ broken")
    with caplog.at_level(logging.WARNING, logger="analytics.auth"):
        assert refusal(lambda: check.verify(token(rsa_key, "RS256", headers={"kid": "rsa-3"}))) == (
            "JWT key id (kid) 'rsa-3' is unknown"
        )
    assert "kept the JWKS keys read before" in caplog.text
    assert check.verify(token(rsa_key, "RS256", headers={"kid": "rsa-1"})).name == "alice"
    assert check.verify(signed).name == "alice"
