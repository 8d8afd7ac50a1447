"""The layout rules of README's Layout section, checked on the source: the core imports no stage,
a stage never imports a later one, the core loads no stage library at import time, and no module
outgrows ~400 lines."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["export", "pipeline", "models", "evaluate"]  # in the order data flows
FOLDERS = {"core": "senclr", **{s: f"senclr.{s}" for s in STAGES}}
STAGE_LIBRARIES = {"tensorflow", "keras", "apache_beam", "ee", "geemap", "pyproj", "shapely", "rasterio",
                   "matplotlib", "pyarrow", "folium", "googleapiclient"}


def _modules(folder: str):
    return sorted((ROOT / folder).rglob("*.py"))


def _imports(path: Path, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "senclr" and parts[1] in STAGES else None


@pytest.mark.parametrize("folder", ["core", *STAGES])
def test_no_module_imports_a_later_stage(folder):
    allowed = set() if folder == "core" else set(STAGES[: STAGES.index(folder) + 1])
    if folder == "evaluate":
        allowed = set(STAGES)  # the demo chains every stage from the last one
    bad = {f"{p.relative_to(ROOT)}: {m}" for p in _modules(folder) for m in _imports(p)
           if _stage_of(m) and _stage_of(m) not in allowed}
    assert not bad, sorted(bad)


def test_the_core_loads_no_stage_library_when_imported():
    bad = {f"{p.relative_to(ROOT)}: {m}" for p in _modules("core") for m in _imports(p, top_level_only=True)
           if m.split(".")[0] in STAGE_LIBRARIES}
    assert not bad, sorted(bad)  # lazily, inside the function that needs it, is fine


@pytest.mark.parametrize("folder", ["core", *STAGES])
def test_modules_stay_small(folder):
    big = {f"{p.relative_to(ROOT)}: {n}" for p in _modules(folder) if (n := len(p.read_text().splitlines())) > 400}
    assert not big, sorted(big)


def test_export_holds_its_two_sources_side_by_side():
    names = {p.name for p in (ROOT / "export").iterdir()}
    assert {"earthengine", "synthetic", "cli.py"} <= names
    assert not _imports(ROOT / "export" / "synthetic" / "source.py") & {"ee", "senclr.export.earthengine"}
