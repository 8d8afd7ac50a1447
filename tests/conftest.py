"""Test-wide setup: quiet TensorFlow, no cloud credentials, shared real-data location."""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
