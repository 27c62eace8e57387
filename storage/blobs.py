"""The file store: reports and exports the service writes, in a local directory (the embedded default)
or on S3 (fsspec / s3fs), sealed at rest when a file encryption key is configured
(storage/file_encryption.py; docs/files.md).

Under the store's root, a file's bytes are at ``<key>`` and its description (size, sha256 and content
type of the plaintext, creation time) at ``.meta/<key>``, sealed like the file: the two trees have the
same shape, so a key that fits in one fits in the other. Writes go to
``.tmp/`` first and are moved under their key only once complete, so a key never holds half a file.
Keys cannot start a segment with a dot, so they never reach those two folders.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import fsspec

from core.errors import Conflict, InvalidRequest, NotFound
from core.settings import Settings
from storage.file_encryption import (
    DEFAULT_CHUNK_SIZE,
    HEADER_BYTES,
    MAGIC,
    FileIntegrityError,
    FileKeyring,
    FileOpener,
    FileSealer,
    is_sealed,
)

MAX_KEY_BYTES = 512
MAX_KEY_SEGMENTS = 16
_SEGMENT = re.compile(r"[A-Za-z0-9_=+@,-][A-Za-z0-9._=+@,-]*")
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*(\s*;.*)?")
_MAX_CONTENT_TYPE = 255
_META = ".meta"
_TEMPORARY = ".tmp"
# Plaintext is handed to the writing thread in pieces of about this size, so a stream of small
# pieces does not cost a thread hop each.
_WRITE_BATCH = 256 * 1024
_READ_SIZE = 256 * 1024
# S3 buffers a multipart upload part in memory until it is this large (S3's minimum part is 5 MiB).
_S3_BLOCK_SIZE = 8 * 1024 * 1024
_STALE_TEMPORARY = timedelta(days=1)


class InvalidBlobKey(InvalidRequest):
    """A file key that is not a safe relative name (``..``, an absolute path, too long, odd characters)."""


class BlobNotFound(NotFound):
    pass


class BlobKeyConflict(Conflict):
    """A local store cannot hold both ``a`` and ``a/b``: one would have to be a file and a folder."""


@dataclass(frozen=True, slots=True)
class BlobInfo:
    key: str
    # Of the plaintext, whatever is stored.
    size: int
    sha256: str
    content_type: str
    created: datetime
    encrypted: bool
    # The id of the key the file is sealed under (hex); None for a plain file.
    key_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "size": self.size,
            "sha256": self.sha256,
            "content_type": self.content_type,
            "created": self.created.isoformat(),
            "encrypted": self.encrypted,
            "key_id": self.key_id,
        }


class BlobReader(Protocol):
    """One stored file being read: plaintext pieces, each authenticated before it is handed out."""

    key: str
    encrypted: bool

    def __aiter__(self) -> AsyncIterator[bytes]: ...
    async def __anext__(self) -> bytes: ...
    async def close(self) -> None: ...
    async def __aenter__(self) -> BlobReader: ...
    async def __aexit__(self, *exc: object) -> None: ...


class BlobStore(Protocol):
    async def put(self, key: str, data: bytes | AsyncIterable[bytes], *, content_type: str) -> BlobInfo: ...
    async def get(self, key: str) -> bytes: ...
    async def open(self, key: str) -> BlobReader: ...
    def stream(self, key: str) -> AsyncIterator[bytes]: ...
    async def info(self, key: str) -> BlobInfo: ...
    async def exists(self, key: str) -> bool: ...
    async def delete(self, key: str) -> bool: ...
    async def keys(self, prefix: str = "") -> list[str]: ...
    async def reencrypt(self, prefix: str = "") -> int: ...
    async def remove_stale_temporaries(self, older_than: timedelta = _STALE_TEMPORARY) -> int: ...


def check_key(key: object, *, field: str = "key") -> str:
    """``key`` if it is a safe relative file name, else InvalidBlobKey naming what is wrong."""
    if not isinstance(key, str):
        raise InvalidBlobKey(f"{field}: a file key is a string, not {type(key).__name__}")
    if not key:
        raise InvalidBlobKey(f"{field}: a file key cannot be empty")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidBlobKey(f"{field}: a file key is at most {MAX_KEY_BYTES} bytes")
    if key.startswith("/") or key.startswith("\\") or re.match(r"[A-Za-z]:", key):
        raise InvalidBlobKey(f"{field}: {key!r} is an absolute path; a file key is relative")
    segments = key.split("/")
    if len(segments) > MAX_KEY_SEGMENTS:
        raise InvalidBlobKey(f"{field}: a file key has at most {MAX_KEY_SEGMENTS} segments")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise InvalidBlobKey(f"{field}: {key!r} has an empty, '.' or '..' segment")
        if not _SEGMENT.fullmatch(segment):
            raise InvalidBlobKey(
                f"{field}: {key!r}: each segment is letters, digits and . _ - = + @ , and does not start with '.'"
            )
    return key


def _check_prefix(prefix: str) -> str:
    """A listing prefix: empty, or a key's start (it may end in '/' or mid-segment)."""
    if not prefix:
        return ""
    check_key(prefix.removesuffix("/") or "/", field="prefix")
    return prefix


def _check_content_type(content_type: object) -> str:
    if (
        not isinstance(content_type, str)
        or len(content_type) > _MAX_CONTENT_TYPE
        or not _CONTENT_TYPE.fullmatch(content_type)
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in content_type)
    ):
        raise InvalidRequest(f"content_type: {content_type!r} is not a media type such as text/csv")
    return content_type


class _Sink:
    """Writes one file (sealed or plain), keeping the plaintext's size and sha256."""

    def __init__(self, handle: Any, sealer: FileSealer | None, *, durable: bool) -> None:
        self._handle = handle
        self._sealer = sealer
        self._durable = durable
        self._digest = hashlib.sha256()
        self.size = 0
        self.stored_size = 0
        if sealer is not None:
            self._store(sealer.header)

    def write(self, data: bytes) -> None:
        self._digest.update(data)
        self.size += len(data)
        self._store(self._sealer.update(data) if self._sealer is not None else data)

    def finish(self) -> str:
        if self._sealer is not None:
            self._store(self._sealer.finish())
        if self._durable:
            # fsspec's local file keeps the real one in .f: synced so that a crash after the rename
            # cannot leave an empty file under the key.
            raw = getattr(self._handle, "f", self._handle)
            raw.flush()
            os.fsync(raw.fileno())
        self._handle.close()
        return self._digest.hexdigest()

    def abort(self) -> None:
        discard = getattr(self._handle, "discard", None)
        # The temporary file is removed next either way; these only release what the write holds.
        if callable(discard) and not self._durable:
            # An S3 multipart upload under way is aborted, not completed.
            with contextlib.suppress(Exception):
                discard()
        with contextlib.suppress(Exception):
            self._handle.close()

    def _store(self, data: bytes) -> None:
        if data:
            self._handle.write(data)
            self.stored_size += len(data)


class _Source:
    """Reads one stored file, opening it if it is sealed; ``read()`` returns None at its end."""

    def __init__(self, handle: Any, head: bytes, opener: FileOpener | None) -> None:
        self._handle = handle
        self._opener = opener
        self._head = head if opener is None else b""
        self._done = False

    @property
    def key_id(self) -> str | None:
        return self._opener.key_id.hex() if self._opener is not None else None

    def read(self) -> bytes | None:
        while not self._done:
            if self._head:
                data, self._head = self._head, b""
            else:
                data = self._handle.read(_READ_SIZE)
            if self._opener is None:
                if data:
                    return bytes(data)
                self._done = True
                return None
            if data:
                plain = self._opener.update(bytes(data))
            else:
                self._done = True
                plain = self._opener.finish()
            if plain:
                return plain
        return None

    def close(self) -> None:
        self._handle.close()


class _FileReader:
    """A stored file read piece by piece on a worker thread (BlobReader)."""

    def __init__(self, key: str, source: _Source) -> None:
        self.key = key
        self.encrypted = source.key_id is not None
        self.key_id = source.key_id
        self._source: _Source | None = source

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        source = self._source
        if source is None:
            raise StopAsyncIteration
        try:
            data = await asyncio.to_thread(source.read)
        except BaseException:
            await self.close()
            raise
        if data is None:
            await self.close()
            raise StopAsyncIteration
        return data

    async def close(self) -> None:
        source, self._source = self._source, None
        if source is not None:
            await asyncio.to_thread(source.close)

    async def __aenter__(self) -> _FileReader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class FsspecBlobStore:
    """A BlobStore over one fsspec filesystem and a root folder in it (a local path, or bucket/prefix)."""

    def __init__(
        self,
        fs: Any,
        root: str,
        *,
        keyring: FileKeyring | None = None,
        encryption_required: bool = False,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        local: bool,
        location: str,
    ) -> None:
        if encryption_required and keyring is None:
            raise ValueError("encryption_required needs a file encryption key")
        self._fs = fs
        self._root = root.rstrip("/")
        self._keyring = keyring
        self._encryption_required = encryption_required
        self._chunk_size = chunk_size
        self._local = local
        # For messages and repr: never holds credentials.
        self.location = location

    def __repr__(self) -> str:
        sealed = f"sealed under {self._keyring.current.key_id.hex()}" if self._keyring else "plain"
        return f"FsspecBlobStore({self.location}, {sealed})"

    @property
    def encrypting(self) -> bool:
        return self._keyring is not None

    # -- writing

    async def put(self, key: str, data: bytes | AsyncIterable[bytes], *, content_type: str) -> BlobInfo:
        """Stores ``data`` (bytes, or an async stream of bytes) under ``key``, replacing what was there.
        Nothing appears under the key unless the whole stream was written."""
        check_key(key)
        _check_content_type(content_type)
        return await self._write(key, data, content_type, created=None)

    async def _write(
        self, key: str, data: bytes | AsyncIterable[bytes], content_type: str, *, created: datetime | None
    ) -> BlobInfo:
        temporary = self._temporary_path()
        sink = await asyncio.to_thread(self._open_sink, temporary, key)
        try:
            if isinstance(data, bytes | bytearray | memoryview):
                await asyncio.to_thread(sink.write, bytes(data))
            else:
                batch = bytearray()
                async for piece in data:
                    if not isinstance(piece, bytes | bytearray | memoryview):
                        raise TypeError(f"a file's stream yields bytes, not {type(piece).__name__}")
                    batch += piece
                    if len(batch) >= _WRITE_BATCH:
                        await asyncio.to_thread(sink.write, bytes(batch))
                        batch.clear()
                if batch:
                    await asyncio.to_thread(sink.write, bytes(batch))
            sha256 = await asyncio.to_thread(sink.finish)
            info = BlobInfo(
                key=key,
                size=sink.size,
                sha256=sha256,
                content_type=content_type,
                created=created or datetime.now(UTC),
                encrypted=self._keyring is not None,
                key_id=self._keyring.current.key_id.hex() if self._keyring is not None else None,
            )
            await asyncio.to_thread(self._commit, temporary, key, info, sink.stored_size)
        except BaseException:
            # Shielded: a cancelled write still removes its temporary file.
            await asyncio.shield(asyncio.to_thread(self._discard, sink, temporary))
            raise
        return info

    def _open_sink(self, path: str, name: str) -> _Sink:
        if self._local:
            self._fs.makedirs(self._fs._parent(path), exist_ok=True)
            handle = self._fs.open(path, "wb")
        else:
            handle = self._fs.open(path, "wb", block_size=_S3_BLOCK_SIZE)
        sealer = FileSealer(self._keyring.current, name, chunk_size=self._chunk_size) if self._keyring else None
        return _Sink(handle, sealer, durable=self._local)

    def _commit(self, temporary: str, key: str, info: BlobInfo, stored_size: int) -> None:
        """Moves the written file under its key, then writes its description. The old description goes
        first: a crash in between leaves a file without one (described again by reading it), never a
        file with the description of another."""
        self._remove_quietly(self._meta_path(key))
        self._move(temporary, self._data_path(key))
        description = {**info.to_dict(), "stored_size": stored_size}
        self._write_small(self._meta_path(key), f"{_META}/{key}", json.dumps(description).encode())

    def _write_small(self, path: str, name: str, data: bytes) -> None:
        temporary = self._temporary_path()
        sink = self._open_sink(temporary, name)
        try:
            sink.write(data)
            sink.finish()
            self._move(temporary, path)
        except BaseException:
            self._discard(sink, temporary)
            raise

    def _move(self, source: str, target: str) -> None:
        if not self._local:
            # S3 has no rename: a server-side copy makes the object appear whole, then the source goes.
            self._fs.mv(source, target)
            return
        parent = os.path.dirname(target)
        try:
            os.makedirs(parent, exist_ok=True)
            os.replace(source, target)
        except (IsADirectoryError, NotADirectoryError, FileExistsError):
            key = target.removeprefix(self._root + "/")
            raise BlobKeyConflict(
                f"key: {key!r} clashes with another file's key (one would be both a file and a folder)"
            ) from None
        # The rename itself survives a crash once its folder is synced.
        folder = os.open(parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    def _discard(self, sink: _Sink, temporary: str) -> None:
        sink.abort()
        self._remove_quietly(temporary)

    def _remove_quietly(self, path: str) -> bool:
        try:
            self._fs.rm_file(path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return False
        return True

    # -- reading

    async def open(self, key: str) -> BlobReader:
        """The file under ``key`` as a stream of plaintext pieces (``async for``, then ``close()``, or
        ``async with``). A missing file or a damaged header fails here, before any byte is read; a
        damaged chunk fails when it is reached, after the authentic pieces before it."""
        check_key(key)
        source = await asyncio.to_thread(self._open_source, self._data_path(key), key)
        return _FileReader(key, source)

    async def stream(self, key: str) -> AsyncIterator[bytes]:
        async with await self.open(key) as reader:
            async for piece in reader:
                yield piece

    async def get(self, key: str) -> bytes:
        """The whole file; nothing at all if any part of it fails its integrity check."""
        async with await self.open(key) as reader:
            return b"".join([piece async for piece in reader])

    def _open_source(self, path: str, name: str) -> _Source:
        try:
            handle = self._fs.open(path, "rb") if self._local else self._fs.open(path, "rb", block_size=_S3_BLOCK_SIZE)
        except (FileNotFoundError, IsADirectoryError):
            raise BlobNotFound(f"no file under the key {name!r}") from None
        try:
            head = b""
            while len(head) < HEADER_BYTES:
                more = handle.read(HEADER_BYTES - len(head))
                if not more:
                    break
                head += more
            # With a key, a file too short to hold the signature but starting like it is a sealed file
            # cut short; without one it can only be a plain file.
            cut_short = self._keyring is not None and 0 < len(head) < len(MAGIC) and MAGIC.startswith(head)
            if is_sealed(head) or cut_short:
                opener: FileOpener | None = FileOpener(head, self._keyring, name)
            elif self._encryption_required:
                raise FileIntegrityError(
                    f"the stored file {name!r} is not encrypted, and ANALYTICS_FILE_ENCRYPTION_REQUIRED refuses "
                    "plain files"
                )
            else:
                opener = None
            return _Source(handle, head, opener)
        except BaseException:
            handle.close()
            raise

    async def exists(self, key: str) -> bool:
        check_key(key)
        return bool(await asyncio.to_thread(self._fs.isfile, self._data_path(key)))

    async def info(self, key: str) -> BlobInfo:
        """What was recorded when the file was written; if that record is missing (a crash between
        the two writes) or does not match the file, what reading the file shows."""
        check_key(key)
        return await asyncio.to_thread(self._info, key)

    def _info(self, key: str) -> BlobInfo:
        path = self._data_path(key)
        try:
            stored = self._fs.info(path)
        except FileNotFoundError:
            raise BlobNotFound(f"no file under the key {key!r}") from None
        if stored.get("type") == "directory":
            raise BlobNotFound(f"no file under the key {key!r}")
        description = self._read_description(key)
        if description is not None and description.get("stored_size") == stored.get("size"):
            try:
                return BlobInfo(
                    key=key,
                    size=int(description["size"]),
                    sha256=str(description["sha256"]),
                    content_type=str(description["content_type"]),
                    created=datetime.fromisoformat(description["created"]),
                    encrypted=bool(description["encrypted"]),
                    key_id=description["key_id"],
                )
            except (KeyError, TypeError, ValueError):
                pass
        return self._described_by_reading(key, path)

    def _read_description(self, key: str) -> dict[str, Any] | None:
        try:
            source = self._open_source(self._meta_path(key), f"{_META}/{key}")
        except BlobNotFound:
            return None
        try:
            data = bytearray()
            while (piece := source.read()) is not None:
                data += piece
        finally:
            source.close()
        try:
            description = json.loads(data)
        except ValueError:
            return None
        return description if isinstance(description, dict) else None

    def _described_by_reading(self, key: str, path: str) -> BlobInfo:
        source = self._open_source(path, key)
        digest, size = hashlib.sha256(), 0
        try:
            while (piece := source.read()) is not None:
                digest.update(piece)
                size += len(piece)
        finally:
            source.close()
        return BlobInfo(
            key=key,
            size=size,
            sha256=digest.hexdigest(),
            content_type="application/octet-stream",
            created=self._modified(path),
            encrypted=source.key_id is not None,
            key_id=source.key_id,
        )

    def _modified(self, path: str) -> datetime:
        modified = self._fs.modified(path)
        return modified if modified.tzinfo else modified.replace(tzinfo=UTC)

    # -- deleting, listing, maintenance

    async def delete(self, key: str) -> bool:
        """Removes the file under ``key``; False if there was none."""
        check_key(key)
        return await asyncio.to_thread(self._delete, key)

    def _delete(self, key: str) -> bool:
        path = self._data_path(key)
        # An S3 delete succeeds whether or not the object was there, so that is asked first.
        existed = self._local or self._fs.isfile(path)
        removed = self._remove_quietly(path) and existed
        # Its description goes after it: one left behind by a crash is ignored, as it describes no file.
        self._remove_quietly(self._meta_path(key))
        return removed

    async def keys(self, prefix: str = "") -> list[str]:
        """The keys that start with ``prefix`` (a string prefix, as on S3), sorted."""
        _check_prefix(prefix)
        return await asyncio.to_thread(self._keys, prefix)

    def _keys(self, prefix: str) -> list[str]:
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        base = f"{self._root}/{folder}" if folder else self._root
        try:
            paths = self._fs.find(base)
        except FileNotFoundError:
            return []
        found = []
        for path in paths:
            key = str(path).removeprefix(self._root + "/")
            if key.startswith(prefix) and not key.startswith((f"{_META}/", f"{_TEMPORARY}/")):
                try:
                    found.append(check_key(key))
                except InvalidBlobKey:
                    continue  # a file not written by this store
        return sorted(found)

    async def reencrypt(self, prefix: str = "") -> int:
        """Rewrites every file under ``prefix`` that is not sealed under the current key (plain, or
        under a previous key) so that it is; returns how many. After it, the previous keys can go."""
        keyring = self._keyring
        if keyring is None:
            raise ValueError("reencrypt needs a file encryption key")
        current = keyring.current.key_id.hex()
        rewritten = 0
        for key in await self.keys(prefix):
            try:
                info = await self.info(key)
            except BlobNotFound:
                continue  # deleted meanwhile
            if info.key_id == current:
                continue
            await self._write(key, self.stream(key), info.content_type, created=info.created)
            rewritten += 1
        return rewritten

    async def remove_stale_temporaries(self, older_than: timedelta = _STALE_TEMPORARY) -> int:
        """Removes what writes cut short by a crash left in ``.tmp/`` (writes under way are younger)."""
        return await asyncio.to_thread(self._remove_stale_temporaries, older_than)

    def _remove_stale_temporaries(self, older_than: timedelta) -> int:
        try:
            paths = self._fs.find(f"{self._root}/{_TEMPORARY}")
        except FileNotFoundError:
            return 0
        cutoff = datetime.now(UTC) - older_than
        removed = 0
        for path in paths:
            try:
                if self._modified(path) < cutoff:
                    removed += self._remove_quietly(path)
            except FileNotFoundError:
                continue
        return removed

    # -- paths

    def _data_path(self, key: str) -> str:
        return f"{self._root}/{key}"

    def _meta_path(self, key: str) -> str:
        return f"{self._root}/{_META}/{key}"

    def _temporary_path(self) -> str:
        return f"{self._root}/{_TEMPORARY}/{uuid.uuid4().hex}"


def local_blob_store(
    directory: Path, *, keyring: FileKeyring | None = None, encryption_required: bool = False
) -> FsspecBlobStore:
    root = directory.resolve()
    root.mkdir(parents=True, exist_ok=True)
    return FsspecBlobStore(
        fsspec.filesystem("file"),
        root.as_posix(),
        keyring=keyring,
        encryption_required=encryption_required,
        local=True,
        location=str(root),
    )


def s3_blob_store(
    url: str,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    keyring: FileKeyring | None = None,
    encryption_required: bool = False,
) -> FsspecBlobStore:
    """``url`` is s3://bucket[/prefix]. Without both credentials, the standard AWS ones are used."""
    try:
        import s3fs
    except ImportError:
        raise RuntimeError(
            f"ANALYTICS_BLOB_URL is {url}, which needs s3fs: pip install 'analytics-service[s3]'"
        ) from None
    options: dict[str, Any] = {
        # Listings are read fresh: other replicas write to the same bucket.
        "use_listings_cache": False,
        "skip_instance_cache": True,
    }
    if endpoint_url:
        options["endpoint_url"] = endpoint_url
    if region:
        options["client_kwargs"] = {"region_name": region}
    if access_key_id and secret_access_key:
        options["key"] = access_key_id
        options["secret"] = secret_access_key
    root = url.removeprefix("s3://").strip("/")
    return FsspecBlobStore(
        s3fs.S3FileSystem(**options),
        root,
        keyring=keyring,
        encryption_required=encryption_required,
        local=False,
        location=f"s3://{root}" + (f" at {endpoint_url}" if endpoint_url else ""),
    )


def open_blob_store(settings: Settings) -> FsspecBlobStore:
    """The file store the settings describe (docs/files.md)."""
    keyring = FileKeyring.from_keys(settings.file_encryption_keys)
    url = settings.blob_url
    if url and url.startswith("s3://"):
        return s3_blob_store(
            url,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            keyring=keyring,
            encryption_required=settings.file_encryption_required,
        )
    directory = Path(url.removeprefix("file://")) if url else settings.data_dir / "files"
    return local_blob_store(directory, keyring=keyring, encryption_required=settings.file_encryption_required)
