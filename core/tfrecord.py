"""TFRecord framing without TensorFlow: length, masked CRC32C, payload, masked CRC32C.

The same bytes TensorFlow's ``TFRecordWriter`` produces, so ``tf.data.TFRecordDataset`` reads
what this writes and the numpy-only reader reads what TensorFlow writes. ``read_file`` streams a
file (gzip'd when its name ends in ``.gz``, as Earth Engine's table exports are) record by record,
so a damaged file still gives every record before the damage.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from typing import BinaryIO, Iterable, Iterator

from senclr import storage

try:  # C implementation, installed with google-cloud-storage
    import google_crc32c

    def crc32c(data: bytes) -> int:
        return google_crc32c.value(data)

except ImportError:  # pragma: no cover - exercised only where google-crc32c is absent
    _TABLE = []
    for _i in range(256):
        _c = _i
        for _ in range(8):
            _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
        _TABLE.append(_c)

    def crc32c(data: bytes) -> int:
        c = 0xFFFFFFFF
        for byte in data:
            c = _TABLE[(c ^ byte) & 0xFF] ^ (c >> 8)
        return c ^ 0xFFFFFFFF


class CorruptRecordError(ValueError):
    """A TFRecord file is truncated or a checksum does not match."""


def _masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


FRAMING = 16  # bytes around each record: its length, the length's CRC, the record's CRC


def frame(record: bytes) -> bytes:
    """One record in TFRecord framing."""
    length = struct.pack("<Q", len(record))
    return length + struct.pack("<I", _masked_crc(length)) + record + struct.pack("<I", _masked_crc(record))


def encode_file(records: Iterable[bytes]) -> bytes:
    return b"".join(frame(r) for r in records)


def iter_records(data: bytes, verify: bool = True, name: str = "<bytes>") -> Iterator[bytes]:
    """Records of an uncompressed TFRecord file held in memory."""
    pos, n = 0, len(data)
    while pos < n:
        if pos + 12 > n:
            raise CorruptRecordError(f"{name}: truncated record header at byte {pos}")
        (length,) = struct.unpack_from("<Q", data, pos)
        (len_crc,) = struct.unpack_from("<I", data, pos + 8)
        if verify and len_crc != _masked_crc(data[pos : pos + 8]):
            raise CorruptRecordError(f"{name}: bad length checksum at byte {pos}")
        start, end = pos + 12, pos + 12 + length
        if end + 4 > n:
            raise CorruptRecordError(f"{name}: truncated record at byte {pos}")
        record = data[start:end]
        (data_crc,) = struct.unpack_from("<I", data, end)
        if verify and data_crc != _masked_crc(record):
            raise CorruptRecordError(f"{name}: bad data checksum at byte {pos}")
        yield record
        pos = end + 4


def _read_exact(f: BinaryIO, n: int, name: str, pos: int) -> bytes:
    """Up to ``n`` bytes (fewer only at the end); a broken gzip stream is a CorruptRecordError."""
    chunks, got = [], 0
    try:
        while got < n:
            chunk = f.read(n - got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise CorruptRecordError(f"{name}: compressed data broken near record byte {pos} ({e})") from None
    return b"".join(chunks)


def iter_stream(f: BinaryIO, verify: bool = True, name: str = "<stream>") -> Iterator[bytes]:
    """Records of an uncompressed TFRecord stream, read one at a time."""
    pos = 0
    while True:
        header = _read_exact(f, 12, name, pos)
        if not header:
            return
        if len(header) < 12:
            raise CorruptRecordError(f"{name}: truncated record header at byte {pos}")
        (length,) = struct.unpack_from("<Q", header)
        (len_crc,) = struct.unpack_from("<I", header, 8)
        if verify and len_crc != _masked_crc(header[:8]):
            raise CorruptRecordError(f"{name}: bad length checksum at byte {pos}")
        body = _read_exact(f, length + 4, name, pos)
        if len(body) < length + 4:
            raise CorruptRecordError(f"{name}: truncated record at byte {pos}")
        record = body[:length]
        (data_crc,) = struct.unpack_from("<I", body, length)
        if verify and data_crc != _masked_crc(record):
            raise CorruptRecordError(f"{name}: bad data checksum at byte {pos}")
        yield record
        pos += 12 + length + 4


def read_file(uri: str, verify: bool = True) -> Iterator[bytes]:
    """Stream the records of a TFRecord file (local or gs://); ``.gz`` names are read through gzip."""
    with storage.open_read(uri) as raw:
        f = gzip.GzipFile(fileobj=raw, mode="rb") if uri.endswith(".gz") else raw
        yield from iter_stream(f, verify, uri)
