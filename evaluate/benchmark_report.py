"""The benchmark comparison report: ``report.md``, ``results.json`` and PNG figures in one folder.

Built only from run records (``senclr.evaluate.runs``), so it shows what was measured: mean ±
sample std over seeds with the number of seeds, chips and training items beside every table.
Every encoder of a benchmark, and both baselines, get a row in every table; a run that is
missing reads "not run" instead of vanishing, so an absent baseline cannot flatter a model.
PNGs and results.json are written first and report.md last: a folder holding report.md is complete.
"""

from __future__ import annotations

import io
import textwrap

import numpy as np

from senclr import __version__, storage
from senclr.errors import InputError
from senclr.evaluate import runs
from senclr.evaluate.summary import BASELINES, fmt_mean_std, pct, summarise

TITLES = {"sen1floods11": "Sen1Floods11: flood segmentation", "bigearthnet": "BigEarthNet: multi-label land cover",
          "dataset": "Own dataset: land-cover segmentation"}
BENCH_ORDER = ("sen1floods11", "bigearthnet", "dataset")
SPLIT_ORDER = ("test", "bolivia", "valid", "val")
MODE_ORDER = ("frozen", "linear", "finetune")
MODE_NAMES = {"frozen": "frozen encoder", "linear": "linear probe on the frozen encoder",
              "finetune": "fine-tuned encoder"}
HEADS = {"segmentation": "U-Net-style decoder over the encoder's feature pyramid, the same for every encoder",
         "multilabel": "the same classification head on every encoder"}
LINEAR = ("frozen", "linear")
BOLIVIA = ("Bolivia is the geographic hold-out: none of its chips is in the training, validation or test "
           "splits, so it measures transfer to a region the heads never saw.")
NO_DATA = "#d0d0d0"
FLOOD_COLORS = ("#e8dcb5", "#2b6cb0")  # not water, water
BASELINE_COLORS = {"random": "#9a9a9a", "scratch": "#404040"}
INPUTS = {"s1": "S1", "s2": "S2", "s1s2": "S1 + S2"}
MAX_CHIPS = 6


# ---------------------------------------------------------------- what goes in which table


def _encoders(recs: list[dict]) -> list[dict]:
    """Rows in report order: pre-trained models, SimCLR-like ones, then the random and scratch
    baselines (a placeholder when a baseline was never run, so its row still appears)."""
    seen: dict[str, dict] = {}
    for r in recs:
        seen.setdefault(r["encoder"], {"encoder": r["encoder"], "label": r["label"], "kind": r["kind"]})
    encs = sorted(seen.values(), key=_rank)
    kinds = {e["kind"] for e in encs}
    return encs + [{"encoder": k, "label": label, "kind": k} for k, label in BASELINES.items() if k not in kinds]


def _rank(enc: dict) -> int:
    if enc["kind"] == "pretrained":
        return int("simclr" in (enc["encoder"] + enc["label"]).lower())
    return {"random": 2, "scratch": 3}.get(enc["kind"], 1)


def _ordered(values, order: tuple) -> list:
    values = list(dict.fromkeys(values))
    return [v for v in order if v in values] + sorted(v for v in values if v not in order)


def _colors(encs: list[dict]) -> dict[str, str]:
    from matplotlib import colormaps

    tab = colormaps["tab10"].colors
    pre = [e["encoder"] for e in encs if e["kind"] == "pretrained"]
    out = {e: tab[i % len(tab)] for i, e in enumerate(pre)}
    return out | {e["encoder"]: BASELINE_COLORS[e["kind"]] for e in encs if e["kind"] in BASELINE_COLORS}


class _Bench:
    """One benchmark's records and summary groups, indexed for the tables and figures."""

    def __init__(self, name: str, records: list[dict], summary_groups: list[dict]):
        self.name, self.records = name, records
        self.task = records[0]["task"]
        self.groups = [g for g in summary_groups if g["benchmark"] == name]
        self.index = {(g["split"], g["mode"], g["encoder"], g["fraction"]): g for g in self.groups}
        self.encoders = _encoders(records)
        self.splits = _ordered((g["split"] for g in self.groups), SPLIT_ORDER)
        self.modes = _ordered((r["mode"] for r in records), MODE_ORDER)
        self.metrics = runs.headline_metrics(name, self.task)
        self.unit = "patches" if self.task == "multilabel" else "chips"

    def modes_of(self, encoder: str) -> list[str]:
        return [m for m in self.modes if any(r["mode"] == m and r["encoder"] == encoder for r in self.records)]

    def row_mode(self, enc: dict, mode: str) -> str:
        """A baseline run in another mode only (random is frozen, scratch trains everything) is shown
        in this mode's table too, marked with its mode, so every table holds both baselines."""
        modes = self.modes_of(enc["encoder"])
        return modes[0] if mode not in modes and modes and enc["kind"] in BASELINES else mode

    def fractions(self, mode: str | None = None) -> list[float]:
        return sorted({r["fraction"] for r in self.records if mode in (None, r["mode"])})

    def cells(self, split: str, mode: str) -> list[tuple[dict, str, list[dict | None]]]:
        """(encoder, its mode, group per fraction or None) for every row of one table."""
        fracs = self.fractions(mode)
        rows = []
        for enc in self.encoders:
            m = self.row_mode(enc, mode)
            rows.append((enc, m, [self.index.get((split, m, enc["encoder"], f)) for f in fracs]))
        return rows


# ---------------------------------------------------------------- markdown


def _span(values) -> str:
    vals = sorted({v for v in values if v is not None})
    if not vals:
        return "n/a"
    return str(vals[0]) if len(vals) == 1 else f"{vals[0]}–{vals[-1]}"


def _row_label(enc: dict, row_mode: str, mode: str) -> str:
    return enc["label"] if row_mode == mode else f"{enc['label']} [{row_mode}]"


def _cell(group: dict | None, key: str) -> str:
    if group is None:
        return "not run"
    m = group["metrics"][key]
    return fmt_mean_std(m["mean"], m["std"], m["n"])


def _tables(b: _Bench, split: str, mode: str) -> list[str]:
    rows = b.cells(split, mode)
    fracs = b.fractions(mode)
    head = " | ".join(pct(f) for f in fracs)
    key, name = b.metrics[0]
    lines = [f"**{name}**, {split} split, {MODE_NAMES.get(mode, mode)}", "",
             f"| encoder | {head} |", "|---|" + "---|" * len(fracs)]
    lines += [f"| {_row_label(e, m, mode)} | " + " | ".join(_cell(g, key) for g in gs) + " |" for e, m, gs in rows]
    if len(b.metrics) > 1:
        lines += ["", f"| encoder | metric | {head} |", "|---|---|" + "---|" * len(fracs)]
        lines += [f"| {_row_label(e, m, mode)} | {label} | " + " | ".join(_cell(g, k) for g in gs) + " |"
                  for e, m, gs in rows for k, label in b.metrics[1:]]
    found = [g for _, _, gs in rows for g in gs if g is not None]
    train = ", ".join(f"{pct(f)}: {_span(n for g in found if g['fraction'] == f for n in g['train_items'])}"
                      for f in fracs)
    seeds = ", ".join(map(str, sorted({s for g in found for s in g["seeds"]}))) or "n/a"
    items = _span(n for g in found for n in g["items"])
    lines += ["", (f"Scored on {items} {b.unit} of the {split} split; training {b.unit} per label fraction: "
                   f"{train}; seeds: {seeds}. Cells: mean ± sample std over seeds (n = seeds with a value)."), ""]
    return lines


def _fmt_budget(budget: dict) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in budget.items())


def _how(b: _Bench) -> list[str]:
    """How the numbers were measured, from the records themselves."""
    budgets = {m: list(dict.fromkeys(_fmt_budget(r["budget"]) for r in b.records if r["mode"] == m)) for m in b.modes}
    one = all(len(v) == 1 for v in budgets.values())
    same = " (the same for every encoder)" if one else " (they differ: see Read first)"
    heads = list(dict.fromkeys(r["head"] for r in b.records if r.get("head")))
    inputs = {e["encoder"]: INPUTS.get(r["input"], r["input"]) for e in b.encoders for r in b.records
              if r["encoder"] == e["encoder"]}
    labels = {e["encoder"]: e["label"] for e in b.encoders}
    same_input = len(set(inputs.values())) == 1
    scoring = ("one confusion matrix over every labelled pixel of the split (no-data pixels ignored), "
               "then IoU per class, mIoU and overall accuracy (OA)" if b.task == "segmentation" else
               "average precision and F1 over the split's patches, pooled over all (patch, class) pairs (micro) "
               "or averaged over classes (macro)")
    return [
        "How measured:", "",
        f"- Budget per mode{same}: " + "; ".join(f"{m}: {' / '.join(v)}" for m, v in budgets.items()),
        f"- Head: {' / '.join(heads) if heads else HEADS.get(b.task, 'the same head on every encoder')}",
        "- Input: " + (f"{next(iter(inputs.values()))} for every encoder" if same_input
                       else "; ".join(f"{labels[e]}: {i}" for e, i in inputs.items())),
        f"- Label fractions: {', '.join(pct(f) for f in b.fractions())} of the training split (a seeded subset per "
        "seed); seeds: " + ", ".join(map(str, sorted({r["seed"] for r in b.records}))),
        f"- Scoring: {scoring}",
        ("- Baselines: random init (frozen) is the same architecture with random weights, never trained; "
         "supervised from scratch trains encoder and head from random weights on the labelled fraction"),
        "",
    ]


def _images(figures: dict[str, bytes], *names: str) -> list[str]:
    return [line for name in names if name in figures for line in (f"![{name.removesuffix('.png')}]({name})", "")]


def _markdown(benches: list[_Bench], warnings: list[str], figures: dict[str, bytes], n_records: int) -> str:
    lines = ["# Encoder comparison on benchmarks", "",
             f"senclr {__version__}, {n_records} run records. Every number is in `results.json`.", ""]
    if warnings:
        lines += ["## Read first", "", *(f"- {w}" for w in warnings), ""]
    for b in benches:
        lines += [f"## {TITLES.get(b.name, b.name)}", "", *_how(b)]
        for split in b.splits:
            lines += [f"### {split} split", ""]
            if split == "bolivia":
                lines += [BOLIVIA, ""]
            for mode in b.modes:
                lines += _tables(b, split, mode)
            lines += _images(figures, f"fraction_{b.name}_{split}.png", f"classes_{b.name}_{split}.png")
        lines += _images(figures, f"samples_{b.name}.png")
    return "\n".join(lines)


# ---------------------------------------------------------------- figures


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


def fraction_png(b: _Bench, split: str) -> bytes:
    """Each headline metric against label fraction: a line per encoder and mode, std as error bars."""
    fig = _figure(4.2 * len(b.metrics), 4.2)
    axes = fig.subplots(1, len(b.metrics), squeeze=False)[0]
    colors = _colors(b.encoders)
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


def classes_png(b: _Bench, split: str) -> bytes:
    """Per-class IoU (segmentation) or AP (multilabel) per encoder at each mode's largest fraction."""
    names = [textwrap.fill(n, 30, max_lines=2, placeholder=" …") for n in b.records[0]["class_names"]]
    fig = _figure(max(8.0, 0.55 * len(names) + 4), 3.4 * len(b.modes) + 1.2)
    axes = fig.subplots(len(b.modes), 1, squeeze=False)[:, 0]
    colors = _colors(b.encoders)
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


def _sample_runs(b: _Bench, out: str, shape: tuple) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
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


def samples_png(b: _Bench, out: str) -> tuple[bytes, list[str]] | None:
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


def write_benchmark_report(out: str, records: list[dict]) -> dict[str, str]:
    """Write figures, results.json and report.md into ``out`` (local or gs://); returns {name: path}.

    Example chips and predictions are read from ``out/runs/`` (where ``runs.collect(out)`` finds
    the records), so the report belongs in the folder that holds the runs.
    """
    storage.refuse_file(out, "--out")
    if not records:
        raise InputError(f"no run records under {storage.join(out, 'runs')}: run the evaluations first")
    summary = summarise(records)
    warnings = list(summary["warnings"])
    benches = [_Bench(name, [r for r in records if r["benchmark"] == name], summary["groups"])
               for name in _ordered((r["benchmark"] for r in records), BENCH_ORDER)]
    figures: dict[str, bytes] = {}
    for b in benches:
        for split in b.splits:
            figures[f"fraction_{b.name}_{split}.png"] = fraction_png(b, split)
            if b.name not in runs.FLOOD_BENCHMARKS:
                figures[f"classes_{b.name}_{split}.png"] = classes_png(b, split)
        samples = samples_png(b, out)
        if samples:
            figures[f"samples_{b.name}.png"], missing = samples
            warnings += [f"{b.name}: no usable predictions file for {label}, so it is absent from the example chips"
                         for label in missing]
    paths = {name: storage.join(out, name) for name in [*figures, "results.json", "report.md"]}
    for name, data in figures.items():
        storage.write_bytes(paths[name], data)
    results = {"senclr_version": __version__, "summary": summary | {"warnings": warnings}, "runs": records}
    storage.write_text(paths["results.json"], runs.dumps(results))
    storage.write_text(paths["report.md"], _markdown(benches, warnings, figures, len(records)))
    return paths
