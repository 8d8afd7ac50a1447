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


def test_gpu_peaks_by_device_name_and_the_share_of_peak():
    from benchmarks.gpu_peak import bf16_peak_tflops, share_of_peak

    names = {"NVIDIA H100 80GB HBM3": 989, "NVIDIA H100 PCIe": 756, "NVIDIA H100 NVL": 835, "NVIDIA H200": 989,
             "NVIDIA GH200 480GB": 989, "NVIDIA A100-SXM4-80GB": 312, "NVIDIA A100-PCIE-40GB": 312,
             "NVIDIA L40S": 362, "NVIDIA L4": 121, "NVIDIA A10": 125}
    assert {name: bf16_peak_tflops(name) for name in names} == names
    assert bf16_peak_tflops("Tesla V100-SXM2-16GB") is None and bf16_peak_tflops("Tesla T4") is None  # no bf16 cores
    assert bf16_peak_tflops("Tesla T4", override=65.0) == 65.0 == bf16_peak_tflops("NVIDIA L4", override=65.0)
    assert share_of_peak(100e9, 0.003, 100.0) == pytest.approx(1.0)  # 3 x 100 GFLOP in 3 ms = 100 TFLOP/s
    assert share_of_peak(100e9, 0.003, None) is None and share_of_peak(float("nan"), 0.003, 100.0) is None


@pytest.mark.slow
def test_the_gpu_part_runs_end_to_end(capsys):
    """The ResNet-50 fp32/bf16 part runs only where a GPU is lent (rarely): run it here on the CPU,
    tiny, as if on an H100, so that a lent device's minutes are not spent finding a bug in it."""
    import argparse

    from benchmarks.train_step import gpu_resnet50

    args = argparse.Namespace(batch_size=2, patch_size=32, steps=1, repeats=1, gpu_peak_tflops=0.0)
    gpu_resnet50(args, {"s1": ["VV", "VH"], "s2": ["B2", "B3", "B4"]}, "NVIDIA H100 80GB HBM3")
    out = capsys.readouterr().out
    assert "ResNet-50 multimodal on NVIDIA H100 80GB HBM3" in out and "bf16 peak 989 TFLOP/s" in out, out
    share = next(line for line in out.splitlines() if line.startswith("ratio resnet50_bf16_share_of_peak"))
    assert 0 < float(share.split()[2]) < 0.01, share  # a CPU reaches a tiny share of an H100


def test_a_negative_gpu_peak_is_refused():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "train_step.py"), "--gpu-peak-tflops", "-5"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 2 and "--gpu-peak-tflops must be" in r.stderr, r.stderr[-2000:]
