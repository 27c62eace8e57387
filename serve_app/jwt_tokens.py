"""JWT bearer tokens: checked with PyJWT against the keys the settings name, turned into a Principal.

Each key is used only with the algorithms of its own kind: the shared secret with HS*, a public key
with the algorithms its type signs (RSA: RS*/PS*, EC: the ES* of its curve, Ed25519: EdDSA), a JWKS
key with its own ``alg``. So a token cannot choose how its signature is read (no "none", no public
key used as an HMAC secret). Every refusal is an ``Unauthenticated`` (401) with a fixed message that
holds nothing of the token beyond, at most, a shortened ``kid`` or ``alg``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.exceptions import InvalidJTIError, InvalidSubjectError
from pydantic import ValidationError

from core.access import ContentScope, Principal, Role
from core.errors import Unauthenticated
from core.settings import Settings
from serve_app.scope_input import MAX_SCOPE_CATEGORIES, MAX_SCOPE_CONTENT_IDS, MAX_SCOPE_VALUE_CHARS, ScopeIn

log = logging.getLogger("analytics.auth")

# Longer tokens are refused before any parsing.
MAX_TOKEN_CHARS = 16 * 1024
MAX_SUBJECT_CHARS = 256
# RSA keys shorter than this are refused when the settings are read (RFC 7518 asks for 2048 bits).
MIN_RSA_BITS = 2048

_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_ROLE_VALUES = frozenset(r.value for r in Role)
_ROLES = ", ".join(r.value for r in Role)

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


def looks_like_jwt(token: str) -> bool:
    """Three dot-separated parts; API keys (``ak_...``) never hold a dot."""
    return not token.startswith("ak_") and token.count(".") == 2


def _shown(value: object) -> str:
    """An attacker-chosen header value, short enough to quote in a refusal."""
    text = str(value)
    return repr(text if len(text) <= 64 else text[:61] + "...")


def public_key_algorithms(key: PublicKey) -> frozenset[str]:
    """The JWT algorithms a public key of this type and size verifies."""
    if isinstance(key, rsa.RSAPublicKey):
        return _RSA_ALGORITHMS
    if isinstance(key, ec.EllipticCurvePublicKey):
        alg = _EC_ALGORITHMS.get(key.curve.name)
        return frozenset({alg}) if alg else frozenset()
    return frozenset({"EdDSA"})


def load_public_key(path: Path) -> PublicKey:
    """A PEM public key, or the public key of a PEM certificate. ValueError names the setting."""
    where = f"ANALYTICS_JWT_PUBLIC_KEY_FILE ({path})"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{where} cannot be read: {exc.strerror}") from exc
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            key: object = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise ValueError(f"{where} is not a PEM public key or certificate") from exc
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        raise ValueError(f"{where}: only RSA, EC (P-256, P-384, P-521) and Ed25519 keys are supported")
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise ValueError(f"{where}: the RSA key has {key.key_size} bits; at least {MIN_RSA_BITS} are needed")
    if not public_key_algorithms(key):
        raise ValueError(f"{where}: the EC curve is not one of P-256, P-384, P-521")
    return key


class JwksFile:
    """The keys of a local JWKS file (``{"keys": [...]}``), by ``kid``. When a token names a ``kid`` the
    file does not hold, the file is read again if it changed since, so keys can be added without a
    restart; a file that became unreadable keeps the keys read before (and a warning is logged)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp = self._current_stamp()
        self._keys = self._read()

    def _current_stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def _read(self) -> dict[str | None, jwt.PyJWK]:
        where = f"ANALYTICS_JWT_JWKS_FILE ({self.path})"
        try:
            document = json.loads(self.path.read_bytes())
        except OSError as exc:
            raise ValueError(f"{where} cannot be read: {exc.strerror}") from exc
        except ValueError as exc:
            raise ValueError(f"{where} is not JSON: {exc}") from exc
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list) or not entries:
            raise ValueError(f'{where} must be a JSON object with a non-empty "keys" list')
        keys: dict[str | None, jwt.PyJWK] = {}
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise ValueError(f"{where}: keys[{index}] is not an object")
            if entry.get("use", "sig") != "sig":
                continue  # an encryption key: never used to check signatures
            kid = entry.get("kid")
            if kid is not None and not isinstance(kid, str):
                raise ValueError(f"{where}: keys[{index}].kid must be a string")
            try:
                key = jwt.PyJWK(entry)
            except jwt.PyJWTError as exc:
                raise ValueError(f"{where}: keys[{index}] (kid {kid!r}) cannot be used: {type(exc).__name__}") from exc
            problem = key.Algorithm.check_key_length(key.Algorithm.prepare_key(key.key))
            if problem:
                raise ValueError(f"{where}: keys[{index}] (kid {kid!r}) is too short: {problem}")
            if kid in keys:
                raise ValueError(f"{where}: two keys have the kid {kid!r}")
            keys[kid] = key
        if not keys:
            raise ValueError(f"{where} holds no signing key")
        return keys

    def get(self, kid: str) -> jwt.PyJWK | None:
        key = self._keys.get(kid)
        if key is None and (stamp := self._current_stamp()) != self._stamp:
            self._stamp = stamp
            try:
                self._keys = self._read()
            except ValueError as exc:
                log.warning("kept the JWKS keys read before: %s", exc)
            key = self._keys.get(kid)
        return key

    def only_key(self) -> jwt.PyJWK | None:
        """The one key, when the file holds exactly one (a token without ``kid`` may use it)."""
        return next(iter(self._keys.values())) if len(self._keys) == 1 else None


@dataclass(frozen=True, slots=True)
class ClaimNames:
    role: str = "role"
    categories: str = "categories"
    content_ids: str = "content_ids"


class JwtVerifier:
    """Checks a JWT's signature and its ``exp``, ``nbf``, ``iat``, ``aud`` and ``iss``, then reads the
    caller from it: ``sub`` (required), the role claim (required, a known role) and the scope claims."""

    def __init__(
        self,
        *,
        algorithms: Sequence[str],
        hmac_secret: str | None = None,
        public_key: PublicKey | None = None,
        jwks: JwksFile | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        leeway_seconds: float = 0.0,
        claims: ClaimNames = ClaimNames(),
    ) -> None:
        if hmac_secret is None and public_key is None and jwks is None:
            raise ValueError("a JWT verifier needs a key: a shared secret, a public key or a JWKS file")
        self._algorithms = frozenset(algorithms)
        self._hmac_secret = hmac_secret
        self._hmac_algorithms = sorted(a for a in self._algorithms if a.startswith("HS"))
        self._public_key = public_key
        self._public_algorithms = (
            sorted(public_key_algorithms(public_key) & self._algorithms) if public_key is not None else []
        )
        if public_key is not None and not self._public_algorithms:
            usable = ", ".join(sorted(public_key_algorithms(public_key)))
            raise ValueError(
                f"ANALYTICS_JWT_PUBLIC_KEY_FILE holds a key for {usable}; none is in ANALYTICS_JWT_ALGORITHMS"
            )
        self._jwks = jwks
        self._audience = audience
        self._issuer = issuer
        self._leeway = leeway_seconds
        self._claims = claims
        self._required = ["exp", "sub", *(["aud"] if audience else []), *(["iss"] if issuer else [])]

    @classmethod
    def from_settings(cls, settings: Settings) -> JwtVerifier | None:
        """The verifier the settings describe; None when no JWT key is configured (JWTs are refused).
        ValueError names the setting that cannot work."""
        if settings.jwt_hmac_secret is None and settings.jwt_public_key_file is None and settings.jwt_jwks_file is None:
            return None
        return cls(
            algorithms=settings.jwt_algorithms,
            hmac_secret=settings.jwt_hmac_secret,
            public_key=load_public_key(settings.jwt_public_key_file) if settings.jwt_public_key_file else None,
            jwks=JwksFile(settings.jwt_jwks_file) if settings.jwt_jwks_file else None,
            # An empty variable means unset, not "the empty audience".
            audience=settings.jwt_audience or None,
            issuer=settings.jwt_issuer or None,
            leeway_seconds=settings.jwt_leeway_seconds,
            claims=ClaimNames(
                role=settings.jwt_role_claim,
                categories=settings.jwt_categories_claim,
                content_ids=settings.jwt_content_ids_claim,
            ),
        )

    def verify(self, token: str) -> Principal:
        """The principal the token names, or Unauthenticated saying why not. Never another exception."""
        if len(token) > MAX_TOKEN_CHARS:
            raise Unauthenticated(f"JWT is longer than {MAX_TOKEN_CHARS} characters")
        try:
            claims = self._verified_claims(token)
        except Unauthenticated:
            raise
        except jwt.PyJWTError as exc:
            raise Unauthenticated(self._refusal(exc)) from None
        except Exception:  # noqa: BLE001 - whatever a hostile token makes the parser raise is a 401, not a 500
            raise Unauthenticated("JWT is not valid") from None
        return self._principal(claims)

    def _verified_claims(self, token: str) -> dict[str, Any]:
        header = jwt.get_unverified_header(token)
        alg = header.get("alg")
        if alg is None:
            raise Unauthenticated("JWT header names no algorithm (alg)")
        if not isinstance(alg, str) or alg not in self._algorithms:
            allowed = ", ".join(sorted(self._algorithms))
            raise Unauthenticated(f"JWT algorithm {_shown(alg)} is not accepted; accepted: {allowed}")
        key, algorithms = self._key_for(alg, header.get("kid"))
        return jwt.decode(
            token,
            key,
            algorithms=algorithms,
            audience=self._audience,
            issuer=self._issuer,
            leeway=self._leeway,
            options={"require": self._required, "enforce_minimum_key_length": True},
        )

    def _key_for(self, alg: str, kid: str | None) -> tuple[Any, list[str]]:
        """The configured key that checks a token of this ``alg`` and ``kid``, with the algorithms it
        may be used with (the token's ``alg`` must be one of them)."""
        if kid is not None and self._jwks is not None:
            jwk = self._jwks.get(kid)
            if jwk is None:
                raise Unauthenticated(f"JWT key id (kid) {_shown(kid)} is unknown")
            return jwk, [jwk.algorithm_name]
        if alg.startswith("HS"):
            if self._hmac_secret is None:
                raise Unauthenticated(f"JWT algorithm {alg} needs a shared secret, and none is configured")
            return self._hmac_secret, self._hmac_algorithms
        if self._public_key is not None:
            return self._public_key, self._public_algorithms
        if self._jwks is not None:
            only = self._jwks.only_key()
            if only is None:
                raise Unauthenticated("JWT has no key id (kid) header; the configured JWKS holds several keys")
            return only, [only.algorithm_name]
        raise Unauthenticated(f"JWT algorithm {alg} needs a public key, and none is configured")

    def _refusal(self, exc: jwt.PyJWTError) -> str:
        if isinstance(exc, jwt.ExpiredSignatureError):
            return "JWT has expired"
        if isinstance(exc, jwt.ImmatureSignatureError):
            claim = "iat" if "(iat)" in str(exc) else "nbf"
            return f"JWT is not valid yet: its '{claim}' is in the future"
        if isinstance(exc, jwt.MissingRequiredClaimError):
            return f"JWT has no '{exc.claim}' claim, which is required"
        if isinstance(exc, jwt.InvalidAudienceError):
            if self._audience is None:
                return "JWT names an audience (aud), and this service expects none"
            return f"JWT audience (aud) is wrong: it must include {self._audience!r}"
        if isinstance(exc, jwt.InvalidIssuerError):
            return f"JWT issuer (iss) is wrong: it must be {self._issuer!r}"
        if isinstance(exc, jwt.InvalidSignatureError):
            return "JWT signature is not valid"
        if isinstance(exc, jwt.InvalidAlgorithmError):
            return "JWT algorithm (alg) does not match the key it names"
        if isinstance(exc, InvalidSubjectError):
            return "JWT claim 'sub' must be a string"
        if isinstance(exc, InvalidJTIError):
            return "JWT claim 'jti' must be a string"
        if isinstance(exc, jwt.InvalidIssuedAtError):
            return "JWT claim 'iat' must be a number"
        if isinstance(exc, jwt.InvalidKeyError):
            return "JWT cannot be checked with the configured key"
        if isinstance(exc, jwt.DecodeError):
            text = str(exc)
            for claim in ("exp", "nbf", "iat"):
                if f"({claim})" in text:
                    return f"JWT claim '{claim}' must be a number"
            return "JWT is malformed"
        return "JWT is not valid"

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > MAX_SUBJECT_CHARS:
            raise Unauthenticated(
                f"JWT claim 'sub' must be a non-empty string of at most {MAX_SUBJECT_CHARS} characters"
            )
        names = self._claims
        if names.role not in claims:
            raise Unauthenticated(f"JWT has no '{names.role}' claim; it must name a role: {_ROLES}")
        role_value = claims[names.role]
        if not isinstance(role_value, str) or role_value not in _ROLE_VALUES:
            raise Unauthenticated(f"JWT claim '{names.role}' must be one of {_ROLES}; got {_shown(role_value)}")
        return Principal(key_id=f"jwt:{subject}", name=subject, role=Role(role_value), scope=self._scope(claims))

    def _scope(self, claims: Mapping[str, Any]) -> ContentScope:
        names = self._claims
        given = {
            "categories": claims.get(names.categories, []),
            "content_ids": claims.get(names.content_ids, []),
        }
        try:
            return ScopeIn.model_validate(given).to_scope()
        except ValidationError as exc:
            field = str(exc.errors()[0]["loc"][0])
            claim, most = (
                (names.categories, MAX_SCOPE_CATEGORIES)
                if field == "categories"
                else (names.content_ids, MAX_SCOPE_CONTENT_IDS)
            )
            raise Unauthenticated(
                f"JWT claim '{claim}' must be a list of at most {most} strings "
                f"of 1 to {MAX_SCOPE_VALUE_CHARS} characters"
            ) from None
