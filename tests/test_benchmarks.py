"""Smoke runs of the benchmarks: they start, finish and print their ratios (no timing is checked)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize(("script", "args"), [("preprocess.py", ["--quick"]), ("preprocess.py", ["--quick", "--format", "table"]),
                                             ("preprocess.py", ["--quick", "--format", "chips"]), ("readers.py", ["--pairs", "50"]),
                                             ("train_step.py", ["--quick"]), ("frozen_cache.py", ["--quick"]),
                                             ("export_throughput.py", ["--quick"])])
def test_benchmark_runs_and_prints_ratios(script, args):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, f"{script} exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    assert any(line.startswith("ratio") for line in r.stdout.splitlines()), r.stdout
    if script == "preprocess.py":  # it also checked that every mode wrote the bare loop's bytes
        assert "byte-identical to every pipeline's: yes" in r.stdout and "ratio memory beam-mp" in r.stdout, r.stdout
