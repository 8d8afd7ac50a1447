"""Dataflow workers get senclr from `--setup_file pyproject.toml`: the artefact Beam builds installs."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_sdist_beam_builds_installs_and_imports(tmp_path):
    from apache_beam.runners.portability.stager import Stager

    sdist = Stager._build_setup_package(str(ROOT / "pyproject.toml"), str(tmp_path))  # what Beam runs
    assert os.path.basename(sdist).startswith("senclr-") and sdist.endswith(".tar.gz")
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), sdist], check=True, capture_output=True)
    code = ("import senclr, senclr.pipeline.transforms, senclr.export.synthetic.source, senclr.models, "
            "senclr.evaluate; print(senclr.__file__)")
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith(str(site))  # the installed copy, not this checkout
