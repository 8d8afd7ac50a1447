"""The benchmark comparison report: ``report.md``, ``results.json`` and PNG figures in one folder.

Built only from run records (``senclr.evaluate.runs``), so it shows what was measured: mean ±
sample std over seeds with the number of seeds, chips and training items beside every table.
Every encoder of a benchmark, and both baselines, get a row in every table; a run that is
missing reads "not run" instead of vanishing, so an absent baseline cannot flatter a model.
PNGs and results.json are written first and report.md last: a folder holding report.md is complete.
"""

from __future__ import annotations

from senclr import __version__, storage
from senclr.errors import InputError
from senclr.evaluate import runs
from senclr.evaluate.report_figures import classes_png, fraction_png, samples_png
from senclr.evaluate.report_view import BENCH_ORDER, TITLES, Bench, ordered
from senclr.evaluate.summary import fmt_mean_std, pct, summarise

MODE_NAMES = {"frozen": "frozen encoder", "linear": "linear probe on the frozen encoder",
              "finetune": "fine-tuned encoder"}
HEADS = {"segmentation": "U-Net-style decoder over the encoder's feature pyramid, the same for every encoder",
         "multilabel": "the same classification head on every encoder"}
BOLIVIA = ("Bolivia is the geographic hold-out: none of its chips is in the training, validation or test "
           "splits, so it measures transfer to a region the heads never saw.")
INPUTS = {"s1": "S1", "s2": "S2", "s1s2": "S1 + S2"}


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


def _tables(b: Bench, split: str, mode: str) -> list[str]:
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


def _how(b: Bench) -> list[str]:
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


def _markdown(benches: list[Bench], warnings: list[str], figures: dict[str, bytes], n_records: int) -> str:
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
    benches = [Bench(name, [r for r in records if r["benchmark"] == name], summary["groups"])
               for name in ordered((r["benchmark"] for r in records), BENCH_ORDER)]
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
