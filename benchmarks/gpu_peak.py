"""The share of a GPU's peak that a training step reaches, for ``benchmarks/train_step.py``.

Peaks are NVIDIA's datasheet figures for dense bf16 tensor-core math (no 2:4 sparsity), in
TFLOP/s, matched against TensorFlow's device name (e.g. "NVIDIA H100 80GB HBM3"); the first
entry whose text the name contains wins, so the more specific names come first. A GPU without
bf16 tensor cores (V100, T4) or one not listed has no entry: pass ``--gpu-peak-tflops``.
"""

from __future__ import annotations

BF16_DENSE_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),  # SXM5 ("H100 80GB HBM3")
    ("H200", 989.0),  # also GH200
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("A10", 125.0),
)

# A training step is taken as 3 forward passes of work (the backward pass costs about two: the
# gradients of the activations and of the weights), the usual convention for model FLOP use.
TRAIN_STEP_FORWARDS = 3


def bf16_peak_tflops(device_name: str, override: float = 0.0) -> float | None:
    """Dense bf16 peak of the GPU named ``device_name`` in TFLOP/s, ``override`` when given
    (> 0), or None when unknown."""
    if override > 0:
        return override
    return next((peak for text, peak in BF16_DENSE_TFLOPS if text in device_name), None)


def share_of_peak(forward_flops: float, step_s: float, peak_tflops: float | None) -> float | None:
    """Model FLOP use of a training step: (3 x forward FLOPs / step time) / peak, or None."""
    if not peak_tflops or not step_s > 0 or not forward_flops == forward_flops:  # no peak, no time, nan
        return None
    return TRAIN_STEP_FORWARDS * forward_flops / step_s / (peak_tflops * 1e12)
