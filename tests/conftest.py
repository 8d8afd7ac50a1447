"""Test-wide setup: quiet TensorFlow, a local Cloud Storage emulator, the shared real-data folder."""

import os
import socket
from pathlib import Path

import pytest

from senclr import storage, tf_defaults

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf_defaults.apply()  # the TensorFlow kernels the commands use (oneDNN on), set before it loads

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def gcs():
    from gcp_storage_emulator.server import create_server

    port = _free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket="senclr-test")
    server.start()
    old = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    storage._client.cache_clear()
    try:
        yield "gs://senclr-test"
    finally:
        server.stop()
        storage._client.cache_clear()
        if old is None:
            os.environ.pop("STORAGE_EMULATOR_HOST")
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = old


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """A read-only schema-v1 dataset: 24 train, 12 val, 12 test pairs of 16x16 (tests may not
    write into it). test_evaluate.py has its own ``tiny`` (dataset + model)."""
    from tests.helpers import write_tiny_dataset

    folder = str(tmp_path_factory.mktemp("tiny"))
    write_tiny_dataset(folder, n=48, size=16, seed=1)
    return folder
