"""One benchmark's run records seen as the report's tables and figures see them: rows in report
order (models, SimCLR-like ones, then both baselines, even never run), splits, modes, fractions."""

from __future__ import annotations

from senclr.evaluate import runs
from senclr.evaluate.summary import BASELINES

TITLES = {"sen1floods11": "Sen1Floods11: flood segmentation", "bigearthnet": "BigEarthNet: multi-label land cover",
          "dataset": "Own dataset: land-cover segmentation"}
LINEAR = ("frozen", "linear")
BENCH_ORDER = ("sen1floods11", "bigearthnet", "dataset")
SPLIT_ORDER = ("test", "bolivia", "valid", "val")
MODE_ORDER = ("frozen", "linear", "finetune")


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


def ordered(values, order: tuple) -> list:
    values = list(dict.fromkeys(values))
    return [v for v in order if v in values] + sorted(v for v in values if v not in order)


class Bench:
    """One benchmark's records and summary groups, indexed for the tables and figures."""

    def __init__(self, name: str, records: list[dict], summary_groups: list[dict]):
        self.name, self.records = name, records
        self.task = records[0]["task"]
        self.groups = [g for g in summary_groups if g["benchmark"] == name]
        self.index = {(g["split"], g["mode"], g["encoder"], g["fraction"]): g for g in self.groups}
        self.encoders = _encoders(records)
        self.splits = ordered((g["split"] for g in self.groups), SPLIT_ORDER)
        self.modes = ordered((r["mode"] for r in records), MODE_ORDER)
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
