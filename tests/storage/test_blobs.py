"""storage/blobs.py and storage/file_encryption.py: one suite over a local directory and over S3 (a moto
server in this process, reached through s3fs): round trips, encryption at rest, integrity failures,
key rotation, key validation and atomic writes."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from pydantic import ValidationError

from core.errors import InvalidRequest
from core.settings import Settings
from storage.blobs import (
    BlobKeyConflict,
    BlobNotFound,
    FsspecBlobStore,
    InvalidBlobKey,
    check_key,
    open_blob_store,
)
from storage.file_encryption import (
    DEFAULT_CHUNK_SIZE,
    HEADER_BYTES,
    MAGIC,
    TAG_BYTES,
    FileIntegrityError,
    FileKeyUnavailable,
    key_id_of,
)

CHUNK = DEFAULT_CHUNK_SIZE
SEALED_CHUNK = CHUNK + TAG_BYTES
BUCKET = "analytics-blobs-test"
S3_CREDENTIALS = {"s3_access_key_id": "testing-key-id", "s3_secret_access_key": "testing-secret-key"}


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A real S3 API (moto in server mode) on loopback, once for this module."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    s3_client(endpoint).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_CREDENTIALS["s3_access_key_id"],
        aws_secret_access_key=S3_CREDENTIALS["s3_secret_access_key"],
        region_name="us-east-1",
    )


@dataclass
class Backend:
    """Makes stores over one location, and reads and writes their files' stored bytes directly (as
    someone with access to the disk or the bucket, not through the store)."""

    name: str
    settings: Callable[..., Settings]
    read_raw: Callable[[str], bytes]
    write_raw: Callable[[str, bytes], None]
    delete_raw: Callable[[str], None]
    names: Callable[[], list[str]]

    def store(self, *keys: str, required: bool = False) -> FsspecBlobStore:
        """A store whose current key is ``keys[0]`` (others: previous keys); no keys = plain files."""
        return open_blob_store(
            self.settings(
                file_encryption_key=keys[0] if keys else None,
                file_encryption_previous_keys=list(keys[1:]),
                file_encryption_required=required,
            )
        )


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, unique: str) -> Backend:
    if request.param == "local":
        root = tmp_path / "files"

        def write_local(name: str, data: bytes) -> None:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)

        return Backend(
            "local",
            lambda **kw: Settings(data_dir=tmp_path, **kw),
            lambda name: (root / name).read_bytes(),
            write_local,
            lambda name: (root / name).unlink(),
            lambda: sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()),
        )
    endpoint = request.getfixturevalue("s3_endpoint")
    client = s3_client(endpoint)
    prefix = f"run-{unique}"

    def s3_names() -> list[str]:
        listed = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix + "/").get("Contents", [])
        return sorted(item["Key"].removeprefix(prefix + "/") for item in listed)

    return Backend(
        "s3",
        lambda **kw: Settings(
            blob_url=f"s3://{BUCKET}/{prefix}",
            s3_endpoint_url=endpoint,
            s3_region="us-east-1",
            **S3_CREDENTIALS,  # type: ignore[arg-type]
            **kw,
        ),
        lambda name: client.get_object(Bucket=BUCKET, Key=f"{prefix}/{name}")["Body"].read(),
        lambda name, data: client.put_object(Bucket=BUCKET, Key=f"{prefix}/{name}", Body=data),
        lambda name: client.delete_object(Bucket=BUCKET, Key=f"{prefix}/{name}"),
        s3_names,
    )


def sample(size: int) -> bytes:
    """Recognisable text (to look for in the stored bytes) of exactly ``size`` bytes."""
    text = b"".join(b"row %08d: the plaintext of a confidential report\n" % n for n in range(size // 40 + 1))
    return text[:size]


async def pieces(data: bytes, sizes: list[int]) -> AsyncIterator[bytes]:
    """``data`` as a stream cut at uneven sizes (cycling through ``sizes``)."""
    at, n = 0, 0
    while at < len(data):
        step = sizes[n % len(sizes)]
        yield data[at : at + step]
        at, n = at + step, n + 1


async def read_streamed(store: FsspecBlobStore, key: str) -> tuple[bytes, Exception | None]:
    """What a streaming reader received before it stopped, and the error that stopped it."""
    received = bytearray()
    try:
        async for piece in store.stream(key):
            received += piece
    except (FileIntegrityError, FileKeyUnavailable) as error:
        return bytes(received), error
    return bytes(received), None


SIZES = [0, 1, 100, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5]


# -- round trips


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
@pytest.mark.parametrize("size", SIZES)
async def test_round_trip(backend: Backend, encrypted: bool, size: int) -> None:
    key = new_key()
    store = backend.store(key) if encrypted else backend.store()
    data = sample(size)
    written = await store.put("reports/2024/q1.csv", data, content_type="text/csv")
    assert await store.get("reports/2024/q1.csv") == data
    assert b"".join([piece async for piece in store.stream("reports/2024/q1.csv")]) == data
    info = await store.info("reports/2024/q1.csv")
    assert info == written
    assert (info.size, info.sha256, info.content_type) == (size, hashlib.sha256(data).hexdigest(), "text/csv")
    assert info.encrypted is encrypted
    assert info.key_id == (key_id_of(base64.b64decode(key)).hex() if encrypted else None)
    assert await store.exists("reports/2024/q1.csv")
    assert await store.keys("reports/") == ["reports/2024/q1.csv"]


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
async def test_a_streamed_put_round_trips(backend: Backend, encrypted: bool) -> None:
    store = backend.store(new_key()) if encrypted else backend.store()
    data = sample(5 * CHUNK + 123)
    info = await store.put("exports/big.jsonl", pieces(data, [1, 7000, 65536, 100_003, 3]), content_type="x/y")
    assert info.size == len(data)
    assert await store.get("exports/big.jsonl") == data
    async with await store.open("exports/big.jsonl") as reader:
        assert reader.encrypted is encrypted
        received = b"".join([piece async for piece in reader])
    assert received == data


async def test_putting_again_replaces_the_file(backend: Backend) -> None:
    store = backend.store(new_key())
    await store.put("a/report.pdf", sample(3 * CHUNK), content_type="application/pdf")
    second = await store.put("a/report.pdf", b"short", content_type="text/plain")
    assert await store.get("a/report.pdf") == b"short"
    assert await store.info("a/report.pdf") == second


# -- encryption at rest


async def test_stored_bytes_of_an_encrypted_file_hide_its_plaintext(backend: Backend) -> None:
    store = backend.store(new_key())
    data = sample(2 * CHUNK + 77)
    info = await store.put("subjects/user-42/export.json", data, content_type="application/json")
    stored = backend.read_raw("subjects/user-42/export.json")
    assert stored.startswith(MAGIC)
    assert b"confidential" not in stored and b"row 0000" not in stored
    # header, two full chunks and a last one, each with its tag
    assert len(stored) == HEADER_BYTES + 2 * SEALED_CHUNK + 77 + TAG_BYTES
    # The description (content type, digest) is sealed as well.
    description = backend.read_raw(".meta/subjects/user-42/export.json")
    assert description.startswith(MAGIC)
    assert b"application/json" not in description and info.sha256.encode() not in description


async def test_without_a_key_files_are_stored_plain(backend: Backend) -> None:
    store = backend.store()
    await store.put("plain.txt", b"hello, plain world", content_type="text/plain")
    assert backend.read_raw("plain.txt") == b"hello, plain world"
    assert (await store.info("plain.txt")).encrypted is False


async def test_files_written_before_the_key_are_still_read(backend: Backend) -> None:
    await backend.store().put("old/plain.csv", b"a,b\n1,2\n", content_type="text/csv")
    key = new_key()
    keyed = backend.store(key)
    assert await keyed.get("old/plain.csv") == b"a,b\n1,2\n"
    assert (await keyed.info("old/plain.csv")).key_id is None
    # Once encryption is required, a file without the header is refused, not served.
    with pytest.raises(FileIntegrityError, match="not encrypted"):
        await backend.store(key, required=True).get("old/plain.csv")


async def test_an_encrypted_file_read_without_its_key_is_refused(backend: Backend) -> None:
    await backend.store(new_key()).put("secret.bin", b"top secret", content_type="application/octet-stream")
    with pytest.raises(FileKeyUnavailable, match="no file encryption key is configured"):
        await backend.store().get("secret.bin")
    with pytest.raises(FileKeyUnavailable, match="neither the current"):
        await backend.store(new_key()).get("secret.bin")


async def test_rotation_reads_old_files_and_writes_new_ones_under_the_current_key(backend: Backend) -> None:
    old, current = new_key(), new_key()
    old_id, current_id = (key_id_of(base64.b64decode(k)).hex() for k in (old, current))
    await backend.store(old).put("r/before.csv", sample(CHUNK + 9), content_type="text/csv")
    await backend.store().put("r/plain.csv", b"plain", content_type="text/csv")
    rotated = backend.store(current, old)
    assert await rotated.get("r/before.csv") == sample(CHUNK + 9)
    assert (await rotated.info("r/before.csv")).key_id == old_id
    after = await rotated.put("r/after.csv", b"new", content_type="text/csv")
    assert after.key_id == current_id
    before = await rotated.info("r/before.csv")

    # Re-encryption moves every file under the current key; then the old key can go.
    assert await rotated.reencrypt("r/") == 2
    assert await rotated.reencrypt("r/") == 0
    only_current = backend.store(current, required=True)
    assert await only_current.get("r/before.csv") == sample(CHUNK + 9)
    assert await only_current.get("r/plain.csv") == b"plain"
    moved = await only_current.info("r/before.csv")
    assert (moved.key_id, moved.sha256, moved.content_type, moved.created) == (
        current_id,
        before.sha256,
        "text/csv",
        before.created,
    )
    with pytest.raises(FileKeyUnavailable):
        await backend.store(old).get("r/before.csv")


# -- integrity


async def sealed_file(backend: Backend, key: str, name: str, size: int) -> bytes:
    await backend.store(key).put(name, sample(size), content_type="text/csv")
    return backend.read_raw(name)


@pytest.mark.parametrize(
    "position",
    [len(MAGIC) + 1 + 8 + 4 + 3, HEADER_BYTES + 10, HEADER_BYTES + SEALED_CHUNK + 5, -1],
    ids=["header salt", "first chunk", "last chunk", "last tag byte"],
)
async def test_a_flipped_byte_is_refused(backend: Backend, position: int) -> None:
    key = new_key()
    stored = bytearray(await sealed_file(backend, key, "t/flip.csv", CHUNK + 500))
    stored[position] ^= 0x01
    backend.write_raw("t/flip.csv", bytes(stored))
    store = backend.store(key)
    with pytest.raises(FileIntegrityError):
        await store.get("t/flip.csv")
    received, error = await read_streamed(store, "t/flip.csv")
    assert isinstance(error, FileIntegrityError)
    # A streaming reader gets only authentic chunks, whole, before the damaged one.
    assert received in (b"", sample(CHUNK))


@pytest.mark.parametrize(
    "keep",
    [
        HEADER_BYTES + 2 * SEALED_CHUNK,  # cut at a chunk boundary: the last chunk is gone
        HEADER_BYTES + 2 * SEALED_CHUNK + 100,  # cut inside the last chunk
        HEADER_BYTES + SEALED_CHUNK - 1,  # cut inside the first chunk
        HEADER_BYTES + TAG_BYTES - 1,  # less than one tag
        HEADER_BYTES,  # the header alone
        HEADER_BYTES - 3,  # part of the header
        3,  # part of the signature
    ],
)
async def test_a_truncated_file_is_refused(backend: Backend, keep: int) -> None:
    key = new_key()
    stored = await sealed_file(backend, key, "t/cut.csv", 2 * CHUNK + 1000)
    backend.write_raw("t/cut.csv", stored[:keep])
    with pytest.raises(FileIntegrityError):
        await backend.store(key).get("t/cut.csv")


async def test_data_after_the_last_chunk_is_refused(backend: Backend) -> None:
    key = new_key()
    stored = await sealed_file(backend, key, "t/long.csv", 1000)
    backend.write_raw("t/long.csv", stored + stored[HEADER_BYTES:])
    with pytest.raises(FileIntegrityError):
        await backend.store(key).get("t/long.csv")


async def test_reordered_chunks_are_refused(backend: Backend) -> None:
    key = new_key()
    stored = await sealed_file(backend, key, "t/order.csv", 3 * CHUNK)
    header, body = stored[:HEADER_BYTES], stored[HEADER_BYTES:]
    first, second, rest = body[:SEALED_CHUNK], body[SEALED_CHUNK : 2 * SEALED_CHUNK], body[2 * SEALED_CHUNK :]
    backend.write_raw("t/order.csv", header + second + first + rest)
    with pytest.raises(FileIntegrityError):
        await backend.store(key).get("t/order.csv")


async def test_chunks_and_files_cannot_be_swapped_between_files(backend: Backend) -> None:
    key = new_key()
    one = await sealed_file(backend, key, "t/one.csv", 2 * CHUNK)
    two = await sealed_file(backend, key, "t/two.csv", 2 * CHUNK)
    store = backend.store(key)
    # The same key and the same plaintext, yet a chunk of one file does not open in the other...
    backend.write_raw("t/one.csv", one[: HEADER_BYTES + SEALED_CHUNK] + two[HEADER_BYTES + SEALED_CHUNK :])
    with pytest.raises(FileIntegrityError):
        await store.get("t/one.csv")
    # ... and a whole sealed file does not open under another key than its own.
    backend.write_raw("t/one.csv", two)
    with pytest.raises(FileIntegrityError):
        await store.get("t/one.csv")
    assert await store.get("t/two.csv") == sample(2 * CHUNK)


async def test_a_tampered_or_swapped_description_is_refused(backend: Backend) -> None:
    key = new_key()
    store = backend.store(key)
    await store.put("t/described.csv", b"x" * 10, content_type="text/csv")
    await store.put("t/other.csv", b"y" * 10, content_type="text/csv")
    description = bytearray(backend.read_raw(".meta/t/described.csv"))
    description[HEADER_BYTES + 2] ^= 0x40
    backend.write_raw(".meta/t/described.csv", bytes(description))
    with pytest.raises(FileIntegrityError):
        await store.info("t/described.csv")
    # Another file's description, though sealed under the same key, does not open as this one's.
    backend.write_raw(".meta/t/described.csv", backend.read_raw(".meta/t/other.csv"))
    with pytest.raises(FileIntegrityError):
        await store.info("t/described.csv")


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
async def test_a_missing_or_stale_description_is_rebuilt_by_reading_the_file(backend: Backend, encrypted: bool) -> None:
    store = backend.store(new_key()) if encrypted else backend.store()
    written = await store.put("t/undescribed.csv", sample(CHUNK + 3), content_type="text/csv")
    # As after a crash between the file's move and its description's write: no description...
    backend.delete_raw(".meta/t/undescribed.csv")
    rebuilt = await store.info("t/undescribed.csv")
    assert (rebuilt.size, rebuilt.sha256, rebuilt.key_id) == (written.size, written.sha256, written.key_id)
    assert rebuilt.content_type == "application/octet-stream"
    if not encrypted:
        # ... or (plain files only: a sealed one is bound to its file) one that describes another file.
        await store.put("t/other.csv", b"other", content_type="text/plain")
        backend.write_raw(".meta/t/undescribed.csv", backend.read_raw(".meta/t/other.csv"))
        assert (await store.info("t/undescribed.csv")).sha256 == written.sha256


# -- keys, content types, not found


BAD_KEYS = [
    "",
    "/etc/passwd",
    "../outside",
    "reports/../../outside",
    "reports/./x",
    "reports//x",
    "reports/",
    ".meta/x.json",
    ".tmp/x",
    "reports/.hidden",
    "C:/windows",
    "back\\slash",
    "new\nline",
    "spaces are out",
    "x" * 513,
    "/".join(["a"] * 17),
]


@pytest.mark.parametrize("bad", BAD_KEYS, ids=range(len(BAD_KEYS)))
async def test_bad_keys_are_refused(backend: Backend, bad: str) -> None:
    store = backend.store()
    with pytest.raises(InvalidBlobKey) as refused:
        await store.put(bad, b"data", content_type="text/plain")
    assert refused.value.status == 400 and refused.value.message.startswith("key: ")
    for call in (store.get, store.info, store.exists, store.delete, store.open):
        with pytest.raises(InvalidBlobKey):
            await call(bad)
    assert backend.names() == []


def test_good_keys_pass() -> None:
    for good in ("a", "reports/2024-01-01/report_1.csv", "exports/user=42/part-0001.parquet", "x" * 512):
        assert check_key(good) == good
    with pytest.raises(InvalidBlobKey, match="string"):
        check_key(None)


@pytest.mark.parametrize("content_type", ["", "text", "text/csv\r\nX-Injected: 1", "a" * 300, "/csv"])
async def test_bad_content_types_are_refused(backend: Backend, content_type: str) -> None:
    with pytest.raises(InvalidRequest, match="content_type"):
        await backend.store().put("k.csv", b"data", content_type=content_type)


async def test_missing_files(backend: Backend) -> None:
    store = backend.store(new_key())
    for call in (store.get, store.info, store.open):
        with pytest.raises(BlobNotFound):
            await call("nothing/here.csv")
    assert not await store.exists("nothing/here.csv")
    assert await store.delete("nothing/here.csv") is False


async def test_delete_and_listing(backend: Backend) -> None:
    store = backend.store(new_key())
    for key in ("reports/2024-01.csv", "reports/2024-02.csv", "reports/2025-01.csv", "exports/x.json", "top"):
        await store.put(key, key.encode(), content_type="text/plain")
    assert await store.keys() == [
        "exports/x.json",
        "reports/2024-01.csv",
        "reports/2024-02.csv",
        "reports/2025-01.csv",
        "top",
    ]
    assert await store.keys("reports/2024") == ["reports/2024-01.csv", "reports/2024-02.csv"]
    assert await store.keys("exports/") == ["exports/x.json"]
    assert await store.keys("none/") == []
    with pytest.raises(InvalidBlobKey, match="prefix"):
        await store.keys("../")
    assert await store.delete("reports/2024-01.csv") is True
    assert not await store.exists("reports/2024-01.csv")
    with pytest.raises(BlobNotFound):
        await store.get("reports/2024-01.csv")
    assert await store.keys("reports/2024") == ["reports/2024-02.csv"]
    assert ".meta/reports/2024-01.csv" not in backend.names()


# -- atomic writes


async def test_a_failed_streaming_write_leaves_nothing_under_the_key(backend: Backend) -> None:
    store = backend.store(new_key())
    await store.put("r/kept.csv", b"the earlier version", content_type="text/csv")

    async def failing() -> AsyncIterator[bytes]:
        yield sample(3 * CHUNK)
        yield sample(300_000)
        raise ConnectionResetError("the client went away")

    for key in ("r/kept.csv", "r/new.csv"):
        with pytest.raises(ConnectionResetError):
            await store.put(key, failing(), content_type="text/csv")
    assert await store.get("r/kept.csv") == b"the earlier version"
    assert not await store.exists("r/new.csv")
    assert await store.keys() == ["r/kept.csv"]
    # Nothing is left behind in the temporary folder either.
    assert backend.names() == [".meta/r/kept.csv", "r/kept.csv"]


async def test_a_stream_of_something_else_than_bytes_is_refused(backend: Backend) -> None:
    async def strings() -> AsyncIterator[Any]:
        yield b"fine"
        yield "not bytes"

    with pytest.raises(TypeError, match="bytes"):
        await backend.store().put("r/typed.csv", strings(), content_type="text/csv")
    assert backend.names() == []


async def test_stale_temporaries_are_removed(backend: Backend) -> None:
    store = backend.store()
    backend.write_raw(".tmp/left-by-a-crash", b"half a file")
    await store.put("r/x.csv", b"x", content_type="text/csv")
    assert await store.remove_stale_temporaries(timedelta(days=1)) == 0
    assert await store.remove_stale_temporaries(timedelta(0)) == 1
    assert backend.names() == [".meta/r/x.csv", "r/x.csv"]


async def test_a_local_key_cannot_be_both_a_file_and_a_folder(tmp_path: Path) -> None:
    store = open_blob_store(Settings(data_dir=tmp_path))
    await store.put("a/b", b"file", content_type="text/plain")
    with pytest.raises(BlobKeyConflict) as refused:
        await store.put("a", b"folder", content_type="text/plain")
    assert refused.value.status == 409
    with pytest.raises(BlobKeyConflict):
        await store.put("a/b/c", b"under a file", content_type="text/plain")
    assert await store.get("a/b") == b"file"
    assert not (tmp_path / "files" / ".tmp").exists() or not any((tmp_path / "files" / ".tmp").iterdir())


# -- settings


def test_the_local_default_is_the_data_dir(tmp_path: Path) -> None:
    store = open_blob_store(Settings(data_dir=tmp_path))
    assert store.location == str((tmp_path / "files").resolve())
    elsewhere = open_blob_store(Settings(data_dir=tmp_path, blob_url=f"file://{tmp_path / 'elsewhere'}"))
    assert elsewhere.location == str((tmp_path / "elsewhere").resolve())


def test_keys_come_from_a_key_file(tmp_path: Path) -> None:
    current, previous = new_key(), new_key()
    key_file = tmp_path / "file-keys"
    key_file.write_text(f"{current}\n\n{previous}\n")
    settings = Settings(data_dir=tmp_path, file_encryption_key_file=key_file)
    assert settings.file_encryption_keys == [base64.b64decode(current), base64.b64decode(previous)]
    # URL-safe base64 is accepted too.
    urlsafe = base64.urlsafe_b64encode(base64.b64decode(current)).decode()
    assert Settings(file_encryption_key=urlsafe).file_encryption_keys == [base64.b64decode(current)]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"file_encryption_key": "not base64!"}, "ANALYTICS_FILE_ENCRYPTION_KEY: a key is not base64"),
        ({"file_encryption_key": base64.b64encode(b"k" * 16).decode()}, "is 16 bytes, not 32"),
        ({"file_encryption_previous_keys": "short"}, "ANALYTICS_FILE_ENCRYPTION_PREVIOUS_KEYS"),
        ({"file_encryption_required": True}, "ANALYTICS_FILE_ENCRYPTION_REQUIRED is set but no file encryption key"),
        ({"file_encryption_key_file": "/nonexistent/keys"}, "ANALYTICS_FILE_ENCRYPTION_KEY_FILE"),
        ({"blob_url": "http://bucket/x"}, "ANALYTICS_BLOB_URL"),
        ({"blob_url": "s3:///prefix"}, "ANALYTICS_BLOB_URL"),
        ({"blob_url": "file://relative/files"}, "ANALYTICS_BLOB_URL"),
    ],
)
def test_bad_file_settings_are_refused_by_name(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**fields)


def test_a_refused_key_is_never_echoed() -> None:
    valid_tail = new_key()
    with pytest.raises(ValidationError) as refused:
        Settings(file_encryption_previous_keys=f"bad,{valid_tail}", s3_secret_access_key="s3-secret-value")
    assert valid_tail not in str(refused.value) and valid_tail[-12:] not in str(refused.value)
    assert "s3-secret-value" not in str(refused.value)


def test_the_keys_and_credentials_stay_out_of_the_store_description(backend: Backend) -> None:
    key = new_key()
    store = backend.store(key)
    text = repr(store) + store.location
    assert key not in text and S3_CREDENTIALS["s3_secret_access_key"] not in text
    assert key_id_of(base64.b64decode(key)).hex() in repr(store)
