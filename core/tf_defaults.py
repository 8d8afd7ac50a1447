"""The TensorFlow settings senclr's commands start with, unless the user set them already.

TensorFlow reads these environment variables once, when it loads, so they are set before any
stage imports it (``senclr.cli.main``; the training benchmark and the test suite do the same, so
they time and test what users run). A user's own value always wins.

- ``TF_CPP_MIN_LOG_LEVEL=2``: no C++ info banners in the commands' output.
- ``TF_ENABLE_ONEDNN_OPTS=1``: TensorFlow's oneDNN CPU kernels (fused convolution, batch norm
  and their gradients). TensorFlow turns them on by itself only on CPUs with AVX-512 VNNI, BF16
  or AMX; on an AVX2 CPU (AMD EPYC, 2 cores) they made the demo's pre-trainings 1.15-2.7x
  faster with the same results to the third decimal (docs/performance.md). Reruns with
  ``--deterministic`` stay identical. ``TF_ENABLE_ONEDNN_OPTS=0`` turns them off.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

DEFAULTS = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "1"}


def apply(environ: MutableMapping[str, str] = os.environ) -> None:
    """Set every default the environment does not set yet (call before TensorFlow loads)."""
    for key, value in DEFAULTS.items():
        environ.setdefault(key, value)
