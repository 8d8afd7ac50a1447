"""Installs that fit each user: the core without stage libraries, one extra per stage, and the
sdist Dataflow workers install (from `--setup_file pyproject.toml`) running with the pipeline's
libraries only."""

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from senclr.extras import closure

ROOT = Path(__file__).resolve().parents[1]
STAGE_LIBRARIES = {"tensorflow", "keras", "apache-beam", "earthengine-api", "geemap"}
ALWAYS_THERE = {"pip", "setuptools", "_distutils_hack", "pkg_resources", "senclr"}

# Makes every module outside an install's closure absent, as in a venv holding only that install.
ABSENT = """
import importlib.abc, sys
class _Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, _Absent())
"""


def _core() -> dict[str, str]:
    return closure(["senclr"])  # no extra: the core's own requirements


def _absent_outside(keep: dict[str, str]) -> set[str]:
    mods = metadata.packages_distributions()
    return {m for m, dists in mods.items()
            if m not in ALWAYS_THERE and not any(canonicalize_name(d) in keep for d in dists)}


def _run(code: str, keep: dict[str, str], **kw) -> subprocess.CompletedProcess:
    prelude = ABSENT.format(blocked=sorted(_absent_outside(keep)))
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=300, **kw)


def _cli(args: list[str]) -> str:
    return f"from senclr.cli import main\nmain({args!r})\n"


@pytest.mark.parametrize("extra, never", [
    (None, STAGE_LIBRARIES),
    ("pipeline", {"tensorflow", "keras", "earthengine-api", "geemap"}),
    ("export", {"tensorflow", "keras"}),
    ("train", {"apache-beam", "earthengine-api", "geemap"}),
])
def test_each_install_resolves_without_the_other_stages_libraries(extra, never):
    got = closure(["senclr"], (extra,) if extra else ())
    assert not set(got) & never, f"senclr[{extra}] pulls {sorted(set(got) & never)}"
    assert set(_core()) <= set(got)
    assert STAGE_LIBRARIES <= set(closure(["senclr"], ("all",)))


def test_the_core_alone_reads_a_dataset_and_inspects_it(tiny):
    code = ("import numpy as np\nfrom senclr.dataset import iter_records\n"
            f"recs = list(iter_records({tiny!r}, 'train', normalized=True, s2_bands=['B8', 'B4']))\n"
            "assert len(recs) == 24 and recs[0]['s2'].shape == (16, 16, 2) and recs[0]['s2'].dtype == np.float32\n"
            + _cli(["inspect", tiny, "--records", "1"]))
    out = _run(code, _core())
    assert out.returncode == 0, out.stderr
    assert "train" in out.stdout


def test_the_benchmark_download_needs_only_the_core(tmp_path):
    args = ["data", "download", "sen1floods11", "--dest", str(tmp_path / "d"), "--workers", "0"]
    out = _run(_cli(args), _core())
    assert out.returncode == 2 and "--workers must be >= 1" in out.stderr, out.stderr  # loaded, checked its flags


@pytest.mark.parametrize("args, extra", [
    (["train", "--data", "D", "--model-dir", "M"], "train"),
    (["evaluate", "--data", "D"], "train"),
    (["preprocess", "--input", "I", "--output", "O"], "pipeline"),
    (["export", "synthetic", "--out", "O", "--pairs", "2"], "export"),
    (["export", "plan", "--region", "0,0,1,1", "--start", "2021-06-01", "--end", "2021-06-10", "--out", "O"], "export"),
    (["demo", "--quick"], "all"),
])
def test_a_command_without_its_extra_names_the_extra(args, extra, tmp_path):
    out = _run(_cli(args), _core(), cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert f"pip install 'senclr[{extra}]'" in out.stderr and "Traceback" not in out.stderr
    assert not list(tmp_path.iterdir())  # nothing written, nothing started


@pytest.mark.slow
def test_the_sdist_beam_builds_runs_preprocess_with_the_pipeline_extra_only(tmp_path):
    from apache_beam.runners.portability.stager import Stager

    from senclr.export.synthetic.source import generate

    sdist = Stager._build_setup_package(str(ROOT / "pyproject.toml"), str(tmp_path))  # what Beam runs
    assert os.path.basename(sdist).startswith("senclr-") and sdist.endswith(".tar.gz")
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), sdist], check=True, capture_output=True)
    raw, out = tmp_path / "raw", tmp_path / "dataset"
    generate(str(raw), pairs=12, seed=3, patch_size=16)
    keep = _core() | closure(["senclr"], ("pipeline",))
    code = ("import senclr\nassert senclr.__file__.startswith(" + repr(str(site)) + ")\n"
            + _cli(["preprocess", "--input", str(raw), "--output", str(out)]))
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = _run(code, keep, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((out / "manifest.json").read_text())["counts"]["read"] == 12


def test_dataflow_workers_get_only_what_the_stage_needs_beyond_the_sdist_and_beam():
    from senclr.beam_flags import worker_requirements
    from senclr.export.earthengine.highvolume import WORKER_NEEDS as EXPORT_NEEDS
    from senclr.pipeline.preprocess import WORKER_NEEDS as PIPELINE_NEEDS

    dataflow = ["--runner", "DataflowRunner", "--setup_file", str(ROOT / "pyproject.toml")]
    for needs, must in ((PIPELINE_NEEDS, "rasterio"), (EXPORT_NEEDS, "earthengine-api")):
        with worker_requirements(dataflow, needs) as flags:
            assert flags[:-2] == dataflow and flags[-2] == "--requirements_file"
            lines = [x for x in Path(flags[-1]).read_text().splitlines() if not x.startswith("#")]
        names = {x.split("==")[0] for x in lines}
        assert f"{must}=={metadata.version(must)}" in lines and all("==" in x for x in lines)
        assert not names & (STAGE_LIBRARIES - {must}) and "numpy" not in names  # Beam's container has numpy
        assert not Path(flags[-1]).exists()  # gone once the pipeline is submitted
    for flags in (["--direct_num_workers", "2"], dataflow + ["--requirements_file", "mine.txt"],
                  dataflow + ["--sdk_container_image", "gcr.io/p/img"], ["--runner", "DataflowRunner"]):
        with worker_requirements(flags, PIPELINE_NEEDS) as got:
            assert got == flags  # local, the user's own requirements or image, or no sdist: left alone


def test_a_stage_library_missing_mid_command_is_named_with_its_extra():
    from senclr.extras import missing_extra

    err = ModuleNotFoundError("No module named 'rasterio.io'", name="rasterio.io")
    assert "pip install 'senclr[pipeline]'" in missing_extra("inspect", err)  # the core command: the module's extra
    assert "pip install 'senclr[train]'" in missing_extra("evaluate", err)  # a stage: its own extra
    assert missing_extra("train", ModuleNotFoundError("No module named 'yaml'", name="yaml")) is None  # not ours: re-raised


@pytest.mark.slow
def test_a_fresh_venv_with_no_extras_reads_a_dataset_and_names_the_missing_extra(tiny, tmp_path):
    """The real install, from the package index as a user gets it (about 25 s and 150 MB)."""
    subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(tmp_path / "dist"),
                    str(ROOT)], check=True, capture_output=True)  # built here: nothing written into the checkout's build/
    sdist = next((tmp_path / "dist").glob("senclr-*.tar.gz"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py, senclr = venv / "bin" / "python", venv / "bin" / "senclr"
    pip = subprocess.run([str(py), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt"), str(sdist)],
                         capture_output=True, text=True, timeout=900)
    assert pip.returncode == 0, f"pip install of the core failed (is the package index reachable?):\n{pip.stderr[-3000:]}"
    listed = subprocess.run([str(py), "-m", "pip", "list", "--format", "json"], capture_output=True, text=True, check=True)
    installed = {canonicalize_name(d["name"]) for d in json.loads(listed.stdout)}
    assert not installed & (STAGE_LIBRARIES | {"pyproj", "rasterio", "shapely"})
    read = subprocess.run([str(py), "-c", "from senclr.dataset import iter_records\n"
                           f"print(sum(1 for _ in iter_records({tiny!r}, normalized=True)))"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert read.stdout.strip() == "48", read.stderr
    shown = subprocess.run([str(senclr), "inspect", tiny], capture_output=True, text=True, cwd=tmp_path)
    assert shown.returncode == 0 and "splits: train 24, val 12, test 12" in shown.stdout, shown.stderr
    train = subprocess.run([str(senclr), "train", "--data", tiny, "--model-dir", str(tmp_path / "m")],
                           capture_output=True, text=True, cwd=tmp_path)
    assert train.returncode == 2 and "pip install 'senclr[train]'" in train.stderr
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
@pytest.mark.parametrize("extra, folders", [("export", ["export"]), ("pipeline", ["pipeline"]),
                                            ("train", ["models", "evaluate"])])
def test_every_module_of_a_stage_imports_with_its_extra_alone(extra, folders):
    modules = []
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] != "demo":  # the demo chains every stage: it needs senclr[all]
                modules.append(".".join(("senclr", *parts[:-1], parts[-1]) if parts[-1] != "__init__" else ("senclr", *parts[:-1])))
    code = f"import importlib\nfor m in {modules!r}:\n    importlib.import_module(m)\n"
    out = _run(code, _core() | closure(["senclr"], (extra,)))
    assert out.returncode == 0, out.stderr[-2000:]
