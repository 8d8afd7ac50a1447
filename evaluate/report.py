"""The evaluation report: ``comparison.png``, ``metrics.json`` and ``report.md`` in one folder.

Files are written atomically and report.md last, so a folder holding report.md is complete.
The water-class IoU leads (DESIGN.md section 4: users are confused when only mIoU is given).
"""

from __future__ import annotations

import io
import json

import numpy as np

from senclr import __version__, storage

FILES = ("comparison.png", "metrics.json", "report.md")
DEFAULT_ENCODERS = (("pretrained", "pre-trained (senclr)"), ("random", "random init"))
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#b0b0b0")
COLUMNS = (("water_iou", "water IoU"), ("not_water_iou", "not-water IoU"), ("miou", "mIoU"),
           ("pixel_accuracy", "pixel acc"))
SAME = 0.01  # water-IoU differences below this are read as "no difference"


def check_out(out: str) -> None:
    """InputError before any work when ``out`` cannot be a folder."""
    storage.refuse_file(out, "--out")


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def encoders(result: dict) -> list[tuple[str, str]]:
    """(key, label) of each compared encoder, in report order (random init last)."""
    return [tuple(e) for e in result.get("encoders", DEFAULT_ENCODERS)]


def reading(result: dict) -> str:
    """Honest sentences on the water-IoU gaps, whichever way they go."""
    sentences = [_gap(result)]
    for key, label in encoders(result):
        if key in ("pretrained", "random"):
            continue
        p, b = result["pretrained"]["water_iou"], result[key]["water_iou"]
        if p is not None and b is not None:
            d = p - b
            verdict = ("no meaningful difference" if abs(d) < SAME
                       else "the model is ahead" if d > 0 else "the model is behind")
            sentences.append(f"Against {label}: {verdict} ({p:.3f} vs {b:.3f}, {d:+.3f}).")
    return " ".join(sentences)


def _gap(result: dict) -> str:
    p, r = result["pretrained"]["water_iou"], result["random"]["water_iou"]
    n = result["test"]["patches"]
    if p is None or r is None:
        return "Water IoU is undefined (no water in the split and none predicted): compare mIoU and pixel accuracy."
    d = p - r
    caveat = f"(one seed, {n} {result['split']} patches)"
    if abs(d) < SAME:
        return f"No meaningful difference: water IoU {p:.3f} pre-trained vs {r:.3f} random ({d:+.3f}) {caveat}."
    if d > 0:
        return (f"Pre-training helps: water IoU {p:.3f} vs {r:.3f} for the random encoder ({d:+.3f}) "
                f"with the same head, budget and seed {caveat}.")
    return (f"Pre-training does not help here: water IoU {p:.3f} vs {r:.3f} for the random encoder ({d:+.3f}) "
            f"with the same head, budget and seed {caveat}.")


def markdown(result: dict) -> str:
    """report.md: the table first, then what it was measured on."""
    head = "| encoder | " + " | ".join(c for _, c in COLUMNS) + " |"
    rows = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for key, label in encoders(result):
        rows.append(f"| {label} | " + " | ".join(_fmt(result[key][k]) for k, _ in COLUMNS) + " |")
    tr, te = result["train"], result["test"]
    pct = lambda f: "n/a" if f is None else f"{100 * f:.1f}%"  # noqa: E731
    lines = [
        "# Water segmentation: pre-trained vs randomly initialised S1 encoders", "",
        *rows, "", f"**Reading:** {reading(result)}", "",
        f"- Dataset: `{result['dataset']}`",
        f"- Scored on: {result['split']} split, {te['patches']} patches, {te['labelled_pixels']} labelled pixels "
        f"({pct(te['water_fraction'])} water); one global confusion matrix, no-data (-1) pixels ignored",
        *([f"- Note: {result['split_note']}"] if result.get("split_note") else []),
        f"- Head trained on: train split, {tr['patches']} patches, {tr['labelled_pixels']} labelled pixels "
        f"({pct(tr['water_fraction'])} water)",
        f"- Head: {result['head']}",
        f"- Budget: {result['epochs']} epochs, batch size {result['batch_size']}, seed {result['seed']} "
        "(the same for every encoder)",
        f"- Model: `{result['model_dir']}`; S1 bands {', '.join(result['s1_bands'])}; "
        f"backbone {result['encoder'].get('backbone', 'small')}, width {result['encoder'].get('width')}; "
        f"inputs scaled with {result['s1_scaling']}",
        *(f"- Baseline `{k}`: `{d}`" for k, d in result.get("baselines", {}).items()),
        "", "| encoder | water precision | water recall | final train loss |", "|---|---|---|---|",
        *(f"| {label} | {_fmt(result[k]['water_precision'])} | {_fmt(result[k]['water_recall'])} | "
          f"{_fmt(result[k]['train_loss'])} |" for k, label in encoders(result)),
        "", "![comparison](comparison.png)", "",
    ]
    return "\n".join(lines)


def metrics_json(result: dict) -> str:
    """metrics.json: every number of the result (the example arrays stay out)."""
    data = {k: v for k, v in result.items() if k != "examples"}
    return json.dumps({"senclr_version": __version__, **data}, indent=2, sort_keys=True) + "\n"


def _bars(ax, result: dict) -> None:
    keys = COLUMNS[:3]
    x = np.arange(len(keys))
    encs = encoders(result)
    width = 0.8 / len(encs)
    for i, (enc, label) in enumerate(encs):
        vals = [result[enc][k] or 0.0 for k, _ in keys]
        color = COLORS[-1] if enc == "random" else COLORS[i % (len(COLORS) - 1)]
        bars = ax.bar(x + (i - (len(encs) - 1) / 2) * width, vals, width, label=label, color=color)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=2)
    ax.set_xticks(x, [name for _, name in keys])
    ax.set_ylim(0, 1.18)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel(f"score on the {result['split']} split ({result['test']['patches']} patches)")
    ax.set_title("Frozen S1 encoder + the same head", fontsize=10)
    ax.legend(loc="upper center", ncol=min(len(encs), 2), fontsize=7, frameon=False)


def _examples(fig, grid, ex: dict, encs: list) -> None:
    from matplotlib.colors import ListedColormap

    colors = {"no data": "#d0d0d0", "not water": "#e8dcb5", "water": "#2b6cb0"}
    masks = ListedColormap(list(colors.values()))
    cols = [(f"S1 {ex['s1_band']}", ex["s1"], "gray"), ("truth", ex["water"], masks),
            *((f"pred. {'pre-trained' if k == 'pretrained' else k}", ex[k], masks) for k, _ in encs if k in ex)]
    for r in range(len(ex["water"])):
        for c, (title, arr, cmap) in enumerate(cols):
            ax = fig.add_subplot(grid[r, c])
            kw = {} if cmap == "gray" else {"vmin": -1, "vmax": 1}
            ax.imshow(arr[r], cmap=cmap, interpolation="nearest", **kw)
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=9)
    from matplotlib.patches import Patch

    fig.legend(handles=[Patch(color=c, label=n) for n, c in colors.items()], loc="lower center",
               bbox_to_anchor=(0.74, -0.02), ncol=3, fontsize=8, frameon=False)


def figure_png(result: dict) -> bytes:
    """Bar chart of water IoU, not-water IoU and mIoU, beside example patches when there are any."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ex = result.get("examples")
    k = 0 if ex is None else len(ex["water"])
    encs = encoders(result)
    cols = 2 + len(encs)
    fig = Figure(figsize=(5.5 + 1.4 * cols if k else 5.5, max(4.5, 1.35 * k + 0.8)), dpi=110)
    FigureCanvasAgg(fig)
    outer = fig.add_gridspec(1, 2, width_ratios=[1, 0.31 * cols]) if k else fig.add_gridspec(1, 1)
    _bars(fig.add_subplot(outer[0, 0]), result)
    if k:
        _examples(fig, outer[0, 1].subgridspec(k, cols, wspace=0.05, hspace=0.08), ex, encs)
    fig.suptitle("Water segmentation: pre-trained vs random S1 encoders", fontsize=11)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def write_report(result: dict, out: str) -> dict[str, str]:
    """Write the three files into ``out``; returns {file name: path}. report.md comes last."""
    check_out(out)
    paths = {name: storage.join(out, name) for name in FILES}
    storage.write_bytes(paths["comparison.png"], figure_png(result))
    storage.write_text(paths["metrics.json"], metrics_json(result))
    storage.write_text(paths["report.md"], markdown(result))
    return paths
