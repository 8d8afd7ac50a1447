"""The report's PNG figures: metric against label fraction, per-class bars, example chips."""

from __future__ import annotations

import io
import textwrap

import numpy as np

from senclr import storage
from senclr.evaluate import runs
from senclr.evaluate.report_view import LINEAR, TITLES, Bench
from senclr.evaluate.summary import pct

NO_DATA = "#d0d0d0"
FLOOD_COLORS = ("#e8dcb5", "#2b6cb0")  # not water, water
BASELINE_COLORS = {"random": "#9a9a9a", "scratch": "#404040"}
MAX_CHIPS = 6


def encoder_colors(encs: list[dict]) -> dict[str, str]:
    from matplotlib import colormaps

    tab = colormaps["tab10"].colors
    pre = [e["encoder"] for e in encs if e["kind"] == "pretrained"]
    out = {e: tab[i % len(tab)] for i, e in enumerate(pre)}
    return out | {e["encoder"]: BASELINE_COLORS[e["kind"]] for e in encs if e["kind"] in BASELINE_COLORS}


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def _figure(width: float, height: float, layout: str = "constrained"):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def fraction_png(b: Bench, split: str) -> bytes:
    """Each headline metric against label fraction: a line per encoder and mode, std as error bars."""
    fig = _figure(4.2 * len(b.metrics), 4.2)
    axes = fig.subplots(1, len(b.metrics), squeeze=False)[0]
    colors = encoder_colors(b.encoders)
    fracs = b.fractions()
    for ax, (key, name) in zip(axes, b.metrics, strict=True):
        for enc in b.encoders:
            for mode in b.modes_of(enc["encoder"]):
                gs = [g for f in fracs if (g := b.index.get((split, mode, enc["encoder"], f)))
                      and g["metrics"][key]["mean"] is not None]
                if gs:
                    ax.errorbar([g["fraction"] for g in gs], [g["metrics"][key]["mean"] for g in gs],
                                yerr=[g["metrics"][key]["std"] or 0.0 for g in gs], color=colors[enc["encoder"]],
                                linestyle="-" if mode in LINEAR else "--", marker="o", markersize=4, capsize=3,
                                label=f"{enc['label']}, {mode}")
        ax.set_xscale("log")
        ax.set_xticks(fracs, [pct(f) for f in fracs])
        ax.minorticks_off()
        ax.set_xlim(fracs[0] / 1.6, fracs[-1] * 1.6)
        ax.set_xlabel("label fraction")
        ax.set_ylabel(f"{name} ({split})")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle(f"{TITLES.get(b.name, b.name)}, {split} split: mean ± std over seeds "
                 "(solid: frozen/linear, dashed: finetune)", fontsize=10)
    return _png(fig)


def classes_png(b: Bench, split: str) -> bytes:
    """Per-class IoU (segmentation) or AP (multilabel) per encoder at each mode's largest fraction."""
    names = [textwrap.fill(n, 30, max_lines=2, placeholder=" …") for n in b.records[0]["class_names"]]
    fig = _figure(max(8.0, 0.55 * len(names) + 4), 3.4 * len(b.modes) + 1.2)
    axes = fig.subplots(len(b.modes), 1, squeeze=False)[:, 0]
    colors = encoder_colors(b.encoders)
    x = np.arange(len(names))
    metric = "IoU" if b.task == "segmentation" else "AP"
    for ax, mode in zip(axes, b.modes, strict=True):
        frac = b.fractions(mode)[-1]
        gs = [g for e in b.encoders if (g := b.index.get((split, mode, e["encoder"], frac)))]
        width = 0.8 / max(len(gs), 1)
        for i, g in enumerate(gs):
            vals = [np.nan if v is None else v for v in g["per_class"]["mean"]][: len(names)]
            vals += [np.nan] * (len(names) - len(vals))
            ax.bar(x + (i - (len(gs) - 1) / 2) * width, vals, width, color=colors[g["encoder"]], label=g["label"])
        ax.set_ylabel(f"{metric}, mean over seeds")
        ax.set_ylim(0, 1)
        ax.set_title(f"{mode}, {pct(frac)} labels, {split} split", fontsize=9)
        ax.set_xticks(x, names, rotation=40, ha="right", fontsize=8)
        ax.set_xlim(-0.6, len(names) - 0.4)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.suptitle(f"{TITLES.get(b.name, b.name)}: per-class {metric}", fontsize=10)
    return _png(fig)


def _load_npz(path: str) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(storage.read_bytes(path)), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _sample_runs(b: Bench, out: str, shape: tuple) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
    """(column title, predictions) per encoder from its chosen run (frozen/linear preferred, largest
    fraction, lowest seed), and the labels of encoders without a usable predictions file."""
    cols, missing = [], []
    for enc in b.encoders:
        recs = [r for r in b.records if r["encoder"] == enc["encoder"]]
        if not recs:
            continue
        r = min(recs, key=lambda r: (r["mode"] not in LINEAR, -r["fraction"], r["seed"]))
        path = runs.pred_path(runs.record_path(out, b.name, r["encoder"], r["mode"], r["fraction"], r["seed"]))
        pred = _load_npz(path).get("pred") if storage.exists(path) else None
        if pred is None or pred.shape[1:] != shape[1:] or len(pred) < shape[0]:
            missing.append(enc["label"])
        else:
            cols.append((f"{enc['label']}\n{r['mode']}, {pct(r['fraction'])}, seed {r['seed']}", pred))
    return cols, missing


def _class_colors(names: list[str]):
    from matplotlib import colormaps
    from matplotlib.colors import BoundaryNorm, ListedColormap

    if len(names) == 2 and "water" in names:
        colors = list(FLOOD_COLORS)
    else:
        tab = colormaps["tab10" if len(names) <= 10 else "tab20"].colors
        colors = [tab[i % len(tab)] for i in range(len(names))]
    return ListedColormap([NO_DATA, *colors]), BoundaryNorm(np.arange(-1.5, len(names)), len(names) + 1), colors


def _stretch(s1: np.ndarray) -> tuple[float, float]:
    """Robust 2-98 % range of one chip's finite dB values."""
    finite = s1[np.isfinite(s1)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [2, 98])
    return float(lo), float(max(hi, lo + 1e-6))


def samples_png(b: Bench, out: str) -> tuple[bytes, list[str]] | None:
    """Example chips: S1 VV, S2 true colour, ground truth, then each encoder's prediction."""
    path = runs.examples_path(out, b.name)
    if b.task != "segmentation" or not storage.exists(path):
        return None
    ex = _load_npz(path)
    k = min(len(ex["truth"]), MAX_CHIPS)
    preds, missing = _sample_runs(b, out, ex["truth"].shape)
    if not preds:
        return None
    from matplotlib import colormaps
    from matplotlib.patches import Patch

    names = b.records[0]["class_names"]
    cmap, norm, colors = _class_colors(names)
    grey = colormaps["gray"].with_extremes(bad=NO_DATA)
    cols = [("S1 VV (dB)", None)] + ([("S2 true colour", None)] if "s2_rgb" in ex else [])
    cols += [("ground truth", ex["truth"])] + preds
    fig = _figure(1.9 * len(cols), 1.9 * k + 1.2, layout="compressed")
    axes = fig.subplots(k, len(cols), squeeze=False)
    for r in range(k):
        for c, (title, labels) in enumerate(cols):
            ax = axes[r, c]
            if c == 0:
                lo, hi = _stretch(ex["s1"][r])
                ax.imshow(ex["s1"][r], cmap=grey, vmin=lo, vmax=hi, interpolation="nearest")
                ax.set_ylabel(str(ex["stems"][r]) if "stems" in ex else f"chip {r}", fontsize=7)
            elif labels is None:
                ax.imshow(ex["s2_rgb"][r])
            else:
                ax.imshow(labels[r], cmap=cmap, norm=norm, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=7)
    handles = [Patch(color=NO_DATA, label="no data")]
    handles += [Patch(color=c, label=n) for n, c in zip(names, colors, strict=True)]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), fontsize=7, frameon=False)
    fig.suptitle(f"{TITLES.get(b.name, b.name)}: example chips", fontsize=10)
    return _png(fig), missing


# ---------------------------------------------------------------- the folder
