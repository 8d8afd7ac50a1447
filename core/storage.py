"""Local paths and gs:// URIs behind one small API; writes are atomic.

Local writes go to a temporary file in the target folder and are renamed into place. A Cloud
Storage object becomes visible only when its upload completes, so uploads are atomic already.
google-cloud-storage honours ``STORAGE_EMULATOR_HOST``, which is how the tests run offline.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import functools
import os
import re
import shutil
import tempfile
from typing import BinaryIO, Iterator

from senclr.errors import InputError

GCS_PREFIX = "gs://"


def _read_umask() -> int:
    """The process umask without changing it (os.umask can only be read by setting it)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


_UMASK = _read_umask()  # mkstemp makes 0600 files; written files get the usual 0666 & ~umask


def is_gcs(uri: str) -> bool:
    return str(uri).startswith(GCS_PREFIX)


def join(base: str, *parts: str) -> str:
    base = str(base)
    if is_gcs(base):
        return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])
    return os.path.join(base, *parts)


def split_gcs(uri: str) -> tuple[str, str]:
    """'gs://bucket/a/b' -> ('bucket', 'a/b')."""
    if not is_gcs(uri):
        raise ValueError(f"not a gs:// URI: {uri}")
    bucket, _, name = uri[len(GCS_PREFIX):].partition("/")
    if not bucket:
        raise ValueError(f"gs:// URI without a bucket: {uri}")
    return bucket, name


@functools.lru_cache(maxsize=1)
def _client():
    from google.cloud import storage  # imported lazily: local use never needs it

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project="senclr-emulator", credentials=AnonymousCredentials())
    return storage.Client()


def _blob(uri: str):
    bucket, name = split_gcs(uri)
    return _client().bucket(bucket).blob(name)


@contextlib.contextmanager
def _gcs_errors(uri: str):
    """A missing bucket or a permission problem is the user's to fix: say so plainly."""
    from google.api_core import exceptions

    try:
        yield
    except exceptions.Forbidden:
        raise InputError(f"no permission for {uri}: grant the account Storage access to its bucket") from None
    except exceptions.NotFound as e:
        if "bucket" in str(e).lower():
            raise InputError(f"the bucket of {uri} does not exist: create it or fix the path") from None
        # A missing object reads like a missing local file: callers handle one exception.
        raise FileNotFoundError(errno.ENOENT, "no such object", uri) from None


def refuse_file(uri: str, flag: str) -> None:
    """InputError when a path meant to be a folder is an existing file."""
    if not is_gcs(uri) and os.path.exists(uri) and not os.path.isdir(uri):
        raise InputError(f"{flag} {uri} is an existing file; give a folder path")


def read_bytes(uri: str) -> bytes:
    if is_gcs(uri):
        with _gcs_errors(uri):
            return _blob(uri).download_as_bytes()
    with open(uri, "rb") as f:
        return f.read()


def read_range(uri: str, offset: int, length: int) -> bytes:
    """``length`` bytes from ``offset``: one ranged GET on gs://, a seek locally."""
    if is_gcs(uri):
        with _gcs_errors(uri):
            data = _blob(uri).download_as_bytes(start=offset, end=offset + length - 1)
    else:
        with open(uri, "rb") as f:
            f.seek(offset)
            data = f.read(length)
    if len(data) != length:
        raise OSError(f"{uri}: expected {length} bytes at offset {offset}, got {len(data)}")
    return data


@contextlib.contextmanager
def open_read(uri: str) -> Iterator[BinaryIO]:
    """A file or object opened for streaming reads, so a large file never sits whole in memory."""
    if is_gcs(uri):
        blob = _blob(uri)
        with _gcs_errors(uri):
            blob.reload()  # a missing object fails here, as FileNotFoundError, not mid-stream
        with blob.open("rb", chunk_size=8 << 20) as f:
            yield f
        return
    with open(uri, "rb") as f:
        yield f


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8")


def write_bytes(uri: str, data: bytes) -> None:
    """Write all of ``data`` or nothing: readers never see a partial file."""
    if is_gcs(uri):
        with _gcs_errors(uri):
            _blob(uri).upload_from_string(data)
        return
    with open_write(uri) as f:
        f.write(data)


@contextlib.contextmanager
def open_write(uri: str) -> Iterator[BinaryIO]:
    """A file to stream into that appears whole on a clean exit, or not at all (like ``write_bytes``).
    Local: a temporary file renamed into place; gs://: spooled to a local temporary file, then uploaded."""
    if is_gcs(uri):
        with tempfile.TemporaryFile() as f:
            yield f
            f.seek(0)
            with _gcs_errors(uri):
                _blob(uri).upload_from_file(f)
        return
    folder = os.path.dirname(os.path.abspath(uri))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, uri)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_text(uri: str, text: str) -> None:
    write_bytes(uri, text.encode("utf-8"))


def exists(uri: str) -> bool:
    if is_gcs(uri):
        return _blob(uri).exists()
    return os.path.exists(uri)


def is_dir(uri: str) -> bool:
    """A local folder, or a gs:// prefix holding at least one object."""
    if is_gcs(uri):
        return any(True for _ in list_files(uri, limit=1))
    return os.path.isdir(uri)


def list_files(prefix: str, pattern: str = "*", limit: int | None = None) -> Iterator[str]:
    """Files under a folder or gs:// prefix (recursively) whose base name matches ``pattern``, sorted."""
    if is_gcs(prefix):
        bucket, name = split_gcs(prefix)
        name = name.rstrip("/") + "/" if name else ""
        with _gcs_errors(prefix):
            # With no pattern to match, a limit can go to the server (is_dir asks for one object).
            blobs = _client().list_blobs(bucket, prefix=name, max_results=limit if pattern == "*" else None)
            found = sorted(f"gs://{bucket}/{b.name}" for b in blobs if fnmatch.fnmatch(b.name.rsplit("/", 1)[-1], pattern))
    else:
        found = sorted(
            os.path.join(root, f)
            for root, _, files in os.walk(prefix)
            for f in files
            if fnmatch.fnmatch(f, pattern) and not f.startswith(".tmp-")
        )
    yield from (found[:limit] if limit else found)


GLOB_CHARS = "*?["


def is_glob(pattern: str) -> bool:
    return any(c in str(pattern) for c in GLOB_CHARS)


def _glob_regex(pattern: str) -> re.Pattern:
    """Shell-style pattern as a regex: ``*`` and ``?`` stay inside one path segment, ``**`` crosses them."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        j = pattern.find("]", i + 2) if c == "[" else -1  # a "]" right after "[" belongs to the set
        if pattern.startswith("**", i):
            out.append(".*")
            i += 1
        elif c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif j > 0:
            body = pattern[i + 1 : j]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def glob(pattern: str) -> list[str]:
    """Files (local or gs://) matching a shell-style pattern, sorted; ``**`` matches any depth.

    One recursive listing under the pattern's fixed leading folders, the same on both kinds of
    storage, so a pattern means the same thing for a local copy and its bucket.
    """
    pattern = str(pattern) if is_gcs(pattern) else os.path.abspath(pattern)
    if not is_glob(pattern):
        return [pattern] if exists(pattern) and not os.path.isdir(pattern) else []  # (isdir is False for gs://)
    first = min(pattern.index(c) for c in GLOB_CHARS if c in pattern)
    base = pattern[: pattern.rfind("/", 0, first)]
    if not is_gcs(pattern) and not os.path.isdir(base):
        return []
    regex = _glob_regex(pattern)
    return [f for f in list_files(base) if regex.match(f)]


def size(uri: str) -> int:
    if is_gcs(uri):
        blob = _blob(uri)
        blob.reload()
        return int(blob.size)
    return os.path.getsize(uri)


def remove(uri: str) -> None:
    """Delete one file or object. Missing is fine."""
    if is_gcs(uri):
        blob = _blob(uri)
        if blob.exists():
            blob.delete()
    elif os.path.exists(uri):
        os.remove(uri)


def remove_tree(uri: str) -> None:
    """Delete a folder or every object under a gs:// prefix. Missing is fine."""
    if is_gcs(uri):
        for f in list(list_files(uri)):
            _blob(f).delete()
    elif os.path.isdir(uri):
        shutil.rmtree(uri)
    elif os.path.exists(uri):
        os.remove(uri)


def makedirs(uri: str) -> None:
    """Create a local folder (gs:// has no folders: a no-op)."""
    if not is_gcs(uri):
        os.makedirs(uri, exist_ok=True)
