"""The TensorFlow settings the ``senclr`` command starts with: applied before TensorFlow loads,
and never over a value the user set."""

import os
import subprocess
import sys

import pytest

from senclr import tf_defaults

# Runs the command's entry point, then loads TensorFlow and says whether its oneDNN kernels are on.
PROBE = """
from senclr import cli
try:
    cli.main(["--version"])
except SystemExit:
    pass
from tensorflow.python.util import _pywrap_util_port
print("onednn", _pywrap_util_port.IsMklEnabled())
"""


def test_apply_fills_only_what_is_unset():
    env = {"TF_ENABLE_ONEDNN_OPTS": "0"}
    tf_defaults.apply(env)
    assert env == {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.mark.parametrize("user, on", [(None, True), ("0", False)])
def test_the_command_loads_tensorflow_with_onednn_unless_the_user_said_no(user, on):
    env = {k: v for k, v in os.environ.items() if k not in tf_defaults.DEFAULTS}
    if user is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = user
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"onednn {on}" in out.stdout
