"""`senclr preprocess --overwrite` killed at each step keeps a whole dataset readable, local and on
gs:// (the Cloud Storage emulator); the next run removes the killed run's leftovers and says so."""

import os
import subprocess
import sys

import numpy as np
import pytest

from senclr import manifest as manifest_lib
from senclr import storage
from senclr.dataset import iter_records
from senclr.errors import InputError
from senclr.pipeline import publish
from senclr.pipeline.preprocess import preprocess
from tests.helpers import random_pair, write_raw_archive

# Exit code 9 stands for SIGKILL at: the build's shards written but not its manifest; the build
# complete but not switched to; the switch done but the old build not yet removed.
_KILL_AT = {
    "mid_pipeline": ("senclr.manifest", "write", "if 'build-' in a[0]: os._exit(9)"),
    "before_switch": ("senclr.pipeline.publish", "switch", "os._exit(9)"),
    "after_switch": ("senclr.storage", "remove_tree", "if not a[0].endswith('.scratch'): os._exit(9)"),
}
_KILLER = """
import importlib, os, sys
module = importlib.import_module("{module}")
orig = getattr(module, "{name}")
def hooked(*a, **k):
    {kill}
    return orig(*a, **k)
setattr(module, "{name}", hooked)
from senclr.pipeline.preprocess import preprocess
preprocess(sys.argv[1], sys.argv[2], cell_deg=1.0, overwrite=True)
"""


@pytest.fixture
def raw(tmp_path):
    rng = np.random.default_rng(5)
    folder = str(tmp_path / "raw")
    write_raw_archive(folder, [random_pair(rng, 16, i) for i in range(12)])
    return folder


def _read_all(out: str) -> int:
    m = manifest_lib.read(out, kind="dataset")
    n = sum(1 for _ in iter_records(out))
    assert n == m["counts"]["kept"] == sum(m["splits"].values())
    return n


def _top(out: str) -> set[str]:
    return set(publish._top_entries(out))


@pytest.mark.slow
@pytest.mark.parametrize("where", ["local", "gcs"])
@pytest.mark.parametrize("instant", sorted(_KILL_AT))
def test_an_overwrite_killed_at_any_step_leaves_a_whole_dataset_and_the_rerun_cleans_up(
        tmp_path, raw, instant, where, request, capsys):
    out = f"{request.getfixturevalue('gcs')}/{tmp_path.name}-ds" if where == "gcs" else str(tmp_path / "ds")
    preprocess(raw, out, cell_deg=1.0)
    before = storage.read_text(manifest_lib.path(out))
    n = _read_all(out)
    assert _top(out) == {"manifest.json", "build-0001"}

    module, name, kill = _KILL_AT[instant]
    script = _KILLER.format(module=module, name=name, kill=kill)
    killed = subprocess.run([sys.executable, "-c", script, raw, out], capture_output=True, text=True, timeout=300)
    assert killed.returncode == 9, killed.stderr[-3000:]

    assert _read_all(out) == n  # a reader finds a whole dataset: the old one, or after the switch the new
    switched = instant == "after_switch"
    assert (storage.read_text(manifest_lib.path(out)) == before) != switched
    assert _top(out) == {"manifest.json", "build-0001", "build-0002"}

    capsys.readouterr()
    m = preprocess(raw, out, cell_deg=1.0, overwrite=True)
    said = capsys.readouterr().out
    left = "build-0001" if switched else "build-0002"
    why = "superseded by a later build" if switched else "on this machine is gone"
    assert f"removed {storage.join(out, left)}, a leftover build" in said and why in said
    new = "build-0003" if switched else "build-0002"  # numbered after what is left once the leftover went
    assert _top(out) == {"manifest.json", new} and _read_all(out) == n
    assert all(s["path"].startswith(new + "/") for s in m["shards"])


def test_a_live_build_and_other_files_are_never_removed(tmp_path, raw):
    out = str(tmp_path / "ds")
    preprocess(raw, out, cell_deg=1.0)
    (tmp_path / "ds" / "notes.txt").write_text("mine")
    live = publish.start(out)  # this process: alive
    preprocess(raw, out, cell_deg=1.0, overwrite=True)
    assert _top(out) == {"manifest.json", "notes.txt", live, "build-0003"}
    assert (tmp_path / "ds" / "notes.txt").read_text() == "mine"


def test_an_existing_dataset_needs_overwrite_and_a_failed_fresh_run_leaves_no_folder(tmp_path, raw):
    out = str(tmp_path / "ds")
    preprocess(raw, out, cell_deg=1.0)
    with pytest.raises(InputError, match="already holds a dataset"):
        preprocess(raw, out, cell_deg=1.0)
    with pytest.raises(InputError):
        preprocess(raw, str(tmp_path / "new"), cell_deg=1.0, min_clear=1.0, cs_threshold=0.999)  # all rejected
    assert not os.path.exists(tmp_path / "new")


@pytest.mark.slow
def test_an_overwrite_killed_while_spilling_a_batch_export_keeps_the_old_dataset(tmp_path):
    """Batch exports are spilled into the build's .scratch/ first: a kill there leaves the old
    dataset whole, and the rerun removes the half-spilled build and writes the same bytes."""
    from tests.helpers import write_batch_export

    rng = np.random.default_rng(6)
    given, out = str(tmp_path / "exp"), str(tmp_path / "ds")
    write_batch_export(given, [random_pair(rng, 16, i, labels=False) for i in range(12)], per_task=4)
    preprocess(given, out, cell_deg=1.0)
    before = {f: open(os.path.join(out, f), "rb").read() for f in ("manifest.json", *_shards(out))}

    kill = "hooked.n = getattr(hooked, 'n', 0) + 1; hooked.n == 5 and os._exit(9)"  # mid-spill
    script = _KILLER.format(module="senclr.pipeline.spill", name="encode", kill=kill)
    killed = subprocess.run([sys.executable, "-c", script, given, out], capture_output=True, text=True, timeout=300)
    assert killed.returncode == 9, killed.stderr[-3000:]
    assert os.path.isdir(os.path.join(out, "build-0002", publish.SCRATCH, "spill"))
    assert open(os.path.join(out, "manifest.json"), "rb").read() == before["manifest.json"] and _read_all(out) == 12

    preprocess(given, out, cell_deg=1.0, overwrite=True)
    assert _top(out) == {"manifest.json", "build-0002"}
    after = {f: open(os.path.join(out, f), "rb").read() for f in _shards(out)}
    assert sorted(f.split("/", 1)[1] for f in after) == sorted(f.split("/", 1)[1] for f in before if "/" in f)
    assert sorted(after.values()) == sorted(v for f, v in before.items() if "/" in f)


def _shards(out: str) -> list[str]:
    return [s["path"] for s in manifest_lib.read(out, kind="dataset")["shards"]]
