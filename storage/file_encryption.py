"""Encryption at rest of the files the service writes: chunked AES-256-GCM with a small header.

A file is ``header || chunk_0 || ... || chunk_n``. The header says which key sealed the file (its key
id) and carries a random per-file salt and nonce prefix. Each file is sealed under its own key,
derived from the master key and the salt (HKDF-SHA256), so nonces never repeat across files however
many a key seals. Chunk ``i`` is ``AES-GCM(plaintext_i)``, ``plaintext_i`` at most ``chunk_size``
bytes, under the nonce ``prefix || i``; its associated data is the header, the file's name, ``i`` and
whether it is the last chunk. So a chunk moved within a file, taken from another file, or a file cut
short at a chunk boundary, or put under another name, fails authentication instead of decrypting.
An empty file is one empty last chunk: every sealed file ends with a chunk that says it is last.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import AnalyticsError

# Not text and not the start of any common document format, so a plain file is never taken for a
# sealed one (the same idea as PNG's signature).
MAGIC = b"\x89AEF\r\n\x1a\n"
VERSION = 1
KEY_BYTES = 32
KEY_ID_BYTES = 8
SALT_BYTES = 16
NONCE_PREFIX_BYTES = 8
TAG_BYTES = 16
DEFAULT_CHUNK_SIZE = 64 * 1024
# A header names its chunk size; bounds on it keep a damaged header from making a reader buffer
# a huge chunk before its tag is checked.
MIN_CHUNK_SIZE = 1024
MAX_CHUNK_SIZE = 8 * 1024 * 1024
_HEADER = struct.Struct(f">{len(MAGIC)}sB{KEY_ID_BYTES}sI{SALT_BYTES}s{NONCE_PREFIX_BYTES}s")
HEADER_BYTES = _HEADER.size
_MAX_CHUNKS = 2**32
_FILE_KEY_INFO = b"analytics-service file key v1"
_KEY_ID_CONTEXT = b"analytics-service file key id v1"


class FileIntegrityError(AnalyticsError):
    """A stored file failed its integrity check (tampered with, truncated or not a sealed file): none
    of its bytes past the last authentic chunk are returned."""

    code = "file_integrity_error"


class FileKeyUnavailable(AnalyticsError):
    """A stored file is sealed under a key this service is not configured with."""

    code = "file_key_unavailable"


def key_id_of(key: bytes) -> bytes:
    """A short, stable name of a key (a one-way hash of it): what a header says, never the key."""
    return hashlib.sha256(_KEY_ID_CONTEXT + key).digest()[:KEY_ID_BYTES]


@dataclass(frozen=True, slots=True)
class FileKey:
    key_id: bytes
    secret: bytes

    @classmethod
    def from_bytes(cls, secret: bytes) -> FileKey:
        if len(secret) != KEY_BYTES:
            raise ValueError(f"a file encryption key is {KEY_BYTES} bytes, not {len(secret)}")
        return cls(key_id_of(secret), secret)

    def __repr__(self) -> str:
        return f"FileKey(key_id={self.key_id.hex()})"


class FileKeyring:
    """The current key (new files are sealed under it) and older keys that still open files."""

    def __init__(self, current: bytes, previous: Iterable[bytes] = ()) -> None:
        self.current = FileKey.from_bytes(current)
        self._by_id = {self.current.key_id: self.current}
        for secret in previous:
            key = FileKey.from_bytes(secret)
            self._by_id.setdefault(key.key_id, key)

    @classmethod
    def from_keys(cls, keys: Sequence[bytes]) -> FileKeyring | None:
        """The first key is the current one; none at all means files are written plain."""
        return cls(keys[0], keys[1:]) if keys else None

    def find(self, key_id: bytes) -> FileKey | None:
        return self._by_id.get(key_id)

    @property
    def key_ids(self) -> list[str]:
        return [key_id.hex() for key_id in self._by_id]

    def __repr__(self) -> str:
        return f"FileKeyring(current={self.current.key_id.hex()}, keys={len(self._by_id)})"


def is_sealed(head: bytes) -> bool:
    """Whether a file starting with ``head`` (at least len(MAGIC) bytes, or the whole file) is sealed."""
    return head[: len(MAGIC)] == MAGIC


def _file_cipher(key: FileKey, salt: bytes) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=_FILE_KEY_INFO).derive(key.secret)
    return AESGCM(derived)


def _associated_data(header: bytes, name: bytes, index: int, last: bool) -> bytes:
    return header + struct.pack(">H", len(name)) + name + struct.pack(">I?", index, last)


def _name_bytes(name: str) -> bytes:
    encoded = name.encode()
    if len(encoded) > 0xFFFF:
        raise ValueError("a sealed file's name is at most 65535 bytes")
    return encoded


class FileSealer:
    """Encrypts one file as it is written: ``header``, then ``update()`` for each piece of plaintext,
    then ``finish()`` once. ``name`` is what the file is stored as; opening needs the same name."""

    def __init__(self, key: FileKey, name: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk_size must be between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE}")
        salt = os.urandom(SALT_BYTES)
        self._prefix = os.urandom(NONCE_PREFIX_BYTES)
        self.header = _HEADER.pack(MAGIC, VERSION, key.key_id, chunk_size, salt, self._prefix)
        self._cipher = _file_cipher(key, salt)
        self._name = _name_bytes(name)
        self._chunk_size = chunk_size
        self._pending = bytearray()
        self._index = 0
        self._finished = False

    def update(self, data: bytes) -> bytes:
        """Ciphertext of the chunks that ``data`` completes. A full chunk is held back until more
        plaintext arrives, because only then is it known not to be the last."""
        if self._finished:
            raise RuntimeError("the file was already finished")
        self._pending += data
        out = bytearray()
        while len(self._pending) > self._chunk_size:
            out += self._seal(bytes(self._pending[: self._chunk_size]), last=False)
            del self._pending[: self._chunk_size]
        return bytes(out)

    def finish(self) -> bytes:
        if self._finished:
            raise RuntimeError("the file was already finished")
        self._finished = True
        sealed = self._seal(bytes(self._pending), last=True)
        self._pending.clear()
        return sealed

    def _seal(self, chunk: bytes, *, last: bool) -> bytes:
        if self._index >= _MAX_CHUNKS:
            raise ValueError("the file is too large to seal under one header")
        nonce = self._prefix + struct.pack(">I", self._index)
        sealed = self._cipher.encrypt(nonce, chunk, _associated_data(self.header, self._name, self._index, last))
        self._index += 1
        return sealed


class FileOpener:
    """Decrypts one sealed file as it is read: made from its header, then ``update()`` with the
    ciphertext that follows, then ``finish()``. Only authenticated plaintext is ever returned, and
    ``finish()`` fails unless the file ended with its last chunk."""

    def __init__(self, header: bytes, keyring: FileKeyring | None, name: str) -> None:
        if len(header) != HEADER_BYTES or not is_sealed(header):
            raise FileIntegrityError(f"the stored file {name!r} has a damaged encryption header (truncated)")
        _, version, key_id, chunk_size, salt, prefix = _HEADER.unpack(header)
        if version != VERSION:
            raise FileIntegrityError(f"the stored file {name!r} has an unknown encryption format version {version}")
        if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
            raise FileIntegrityError(f"the stored file {name!r} has a damaged encryption header")
        if keyring is None:
            raise FileKeyUnavailable(
                f"the stored file {name!r} is encrypted but no file encryption key is configured "
                "(ANALYTICS_FILE_ENCRYPTION_KEY or ANALYTICS_FILE_ENCRYPTION_KEY_FILE)"
            )
        key = keyring.find(key_id)
        if key is None:
            raise FileKeyUnavailable(
                f"the stored file {name!r} is encrypted under key id {key_id.hex()}, which is neither the current "
                "file encryption key nor one of ANALYTICS_FILE_ENCRYPTION_PREVIOUS_KEYS"
            )
        self.key_id = key_id
        self.header = header
        self._cipher = _file_cipher(key, salt)
        self._prefix = prefix
        self._name = _name_bytes(name)
        self._display_name = name
        self._sealed_chunk = chunk_size + TAG_BYTES
        self._pending = bytearray()
        self._index = 0
        self._finished = False

    def update(self, data: bytes) -> bytes:
        """Plaintext of the chunks ``data`` completes; a full chunk waits until more ciphertext shows
        that it is not the last."""
        if self._finished:
            raise FileIntegrityError(f"the stored file {self._display_name!r} has data after its last chunk")
        self._pending += data
        out = bytearray()
        while len(self._pending) > self._sealed_chunk:
            out += self._open(bytes(self._pending[: self._sealed_chunk]), last=False)
            del self._pending[: self._sealed_chunk]
        return bytes(out)

    def finish(self) -> bytes:
        if self._finished:
            raise RuntimeError("the file was already finished")
        self._finished = True
        if len(self._pending) < TAG_BYTES:
            raise FileIntegrityError(f"the stored file {self._display_name!r} is truncated")
        plain = self._open(bytes(self._pending), last=True)
        self._pending.clear()
        return plain

    def _open(self, sealed: bytes, *, last: bool) -> bytes:
        if self._index >= _MAX_CHUNKS:
            raise FileIntegrityError(f"the stored file {self._display_name!r} has too many chunks")
        nonce = self._prefix + struct.pack(">I", self._index)
        try:
            plain = self._cipher.decrypt(nonce, sealed, _associated_data(self.header, self._name, self._index, last))
        except InvalidTag:
            self._finished = True
            raise FileIntegrityError(
                f"the stored file {self._display_name!r} failed its integrity check at chunk {self._index} "
                "(tampered with, truncated, reordered or not this file)"
            ) from None
        self._index += 1
        return plain
