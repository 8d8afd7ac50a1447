"""core/npy.py reads what np.load reads, the same way, from a parsed-once header."""

import io

import numpy as np
import pytest
from numpy.lib import format as npy_format

from senclr import npy
from senclr.raw_archive import encode_npy, to_structured
from tests.helpers import random_pair


def _saved(arr, version=None) -> bytes:
    buf = io.BytesIO()
    if version is None:
        np.save(buf, arr, allow_pickle=False)
    else:
        npy_format.write_array(buf, arr, version=version, allow_pickle=False)
    return buf.getvalue()


def _same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape and a.flags.f_contiguous == b.flags.f_contiguous
    if a.dtype.names:
        for name in a.dtype.names:
            assert np.array_equal(a[name], b[name], equal_nan=True), name
    else:
        assert np.array_equal(a, b, equal_nan=True)


@pytest.mark.parametrize("version", [None, (1, 0), (2, 0), (3, 0)])
def test_load_matches_np_load(version):
    rng = np.random.default_rng(0)
    pair = to_structured(random_pair(rng, 8, 0, labels=True))  # a raw-archive pair: ~20 named fields
    arrays = [pair, np.asfortranarray(rng.normal(size=(3, 5))), rng.integers(0, 9, size=(2, 3, 4), dtype=np.uint16),
              np.zeros((0, 4), np.float32), np.array(3.5)]
    for arr in arrays:
        data = _saved(arr, version)
        for _ in range(2):  # parsed, then from the kept header
            got = npy.load(data)
            _same(np.load(io.BytesIO(data), allow_pickle=False), got)
            assert got.flags.writeable  # as np.load's: a caller may write into it
    assert npy.load(encode_npy(pair)).dtype.names == pair.dtype.names


def test_broken_data_is_a_value_error():
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    data = _saved(arr)
    npy.load(data)  # its header is now kept: the cut below must still be caught
    for bad in (data[:-1], data[:20], b"not an npy file at all", b""):
        with pytest.raises(ValueError):
            npy.load(bad)
    objects = io.BytesIO()
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickle"):
        npy.load(objects.getvalue())


def test_headers_are_parsed_once_per_layout(monkeypatch):
    data = _saved(np.ones((4, 4), np.int16))
    npy.load(data)
    calls = []
    real = npy_format.read_array_header_1_0
    monkeypatch.setattr(npy_format, "read_array_header_1_0", lambda f, **k: calls.append(1) or real(f, **k))
    for _ in range(3):
        npy.load(data)
    assert calls == []  # the same layout again: no parsing
    npy.load(_saved(np.ones((4, 5), np.int16)))
    assert calls == [1]  # a new layout: parsed once
