"""``tf.train.Example`` in protobuf wire format, encoded and decoded with the standard library.

Only the three feature kinds of ``tensorflow/core/example/feature.proto`` exist: BytesList (1),
FloatList (2, packed float32) and Int64List (3, packed varint). Keys are written sorted, so the
same features always give the same bytes (TensorFlow's own map order is not guaranteed).
"""

from __future__ import annotations


import numpy as np

_LEN, _VARINT, _FIXED32 = 2, 0, 5


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int64 -> two's complement, 10 bytes
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(num: int, payload: bytes) -> bytes:
    return _varint((num << 3) | _LEN) + _varint(len(payload)) + payload


def _feature(value) -> bytes:
    if isinstance(value, (bytes, str)):
        value = [value]
    values = list(value)
    if not values:
        return _field(1, b"")  # empty BytesList
    if isinstance(values[0], (bytes, str)):
        items = b"".join(_field(1, v.encode() if isinstance(v, str) else v) for v in values)
        return _field(1, items)
    if isinstance(values[0], (float, np.floating)):
        return _field(2, _field(1, np.asarray(values, "<f4").tobytes()))
    return _field(3, _field(1, b"".join(_varint(int(v)) for v in values)))


def encode_example(features: dict) -> bytes:
    """Serialise {name: bytes | str | [float] | [int]} as a tf.train.Example."""
    entries = b"".join(_field(1, _field(1, k.encode()) + _field(2, _feature(features[k]))) for k in sorted(features))
    return _field(1, entries)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes):
    """(field number, wire type, value) for each field of a message."""
    pos, n = 0, len(buf)
    while pos < n:
        tag, pos = _read_varint(buf, pos)
        num, wire = tag >> 3, tag & 7
        if wire == _LEN:
            length, pos = _read_varint(buf, pos)
            yield num, wire, buf[pos : pos + length]
            pos += length
        elif wire == _VARINT:
            value, pos = _read_varint(buf, pos)
            yield num, wire, value
        elif wire == _FIXED32:
            yield num, wire, buf[pos : pos + 4]
            pos += 4
        elif wire == 1:
            yield num, wire, buf[pos : pos + 8]
            pos += 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _decode_feature(buf: bytes, arrays: bool = False):
    for kind, _, payload in _fields(buf):
        if kind == 1:
            return [v for _, _, v in _fields(payload)]
        if kind == 2:
            chunks = [v for _, _, v in _fields(payload)]  # packed: one chunk; unpacked: 4 bytes each
            values = np.frombuffer(b"".join(chunks), "<f4")
            return values.astype(np.float32) if arrays else values.tolist()
        if kind == 3:
            out = []
            for _, wire, v in _fields(payload):
                if wire == _VARINT:
                    out.append(_signed64(v))
                else:
                    p = 0
                    while p < len(v):
                        x, p = _read_varint(v, p)
                        out.append(_signed64(x))
            return np.asarray(out, np.int64) if arrays else out
    return []


def decode_example(buf: bytes, arrays: bool = False) -> dict:
    """Parse a tf.train.Example into {name: [bytes] | [float] | [int]}.

    With ``arrays`` float and int64 lists come back as numpy arrays (float32, int64): a P x P band
    of an Earth Engine table export is then one copy, not P x P Python floats.
    """
    out = {}
    for _, _, features in _fields(buf):
        for _, _, entry in _fields(features):
            key, value = None, b""
            for num, _, v in _fields(entry):
                if num == 1:
                    key = v.decode()
                elif num == 2:
                    value = v
            out[key] = _decode_feature(value, arrays)
    return out
