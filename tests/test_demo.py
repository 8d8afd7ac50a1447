"""`senclr demo --quick` end to end, and the CLI front door."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from senclr.cli import COMMANDS, cli


def test_help_lists_every_command_without_loading_stages():
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom senclr.cli import cli\n"
        "r = CliRunner().invoke(cli, ['--help'])\nassert r.exit_code == 0\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'apache_beam', 'ee')]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    r = CliRunner().invoke(cli, ["--help"])
    assert all(name in r.output for name in COMMANDS)


def test_unknown_command_and_flag_exit_2(tmp_path):
    runner = CliRunner()
    assert runner.invoke(cli, ["frobnicate"]).exit_code == 2
    assert runner.invoke(cli, ["demo", "--fast"]).exit_code == 2
    assert runner.invoke(cli, ["demo", "--seed", "-1"]).exit_code == 2
    (tmp_path / "f").write_text("x")
    r = runner.invoke(cli, ["demo", "--workdir", str(tmp_path / "f")])
    assert r.exit_code == 2 and "existing file" in r.output


def test_demo_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    r = CliRunner().invoke(cli, ["demo", "--workdir", str(tmp_path), "--quick"])
    assert r.exit_code == 2 and "not made by `senclr demo`" in r.output
    assert (tmp_path / "thesis.tex").read_text() == "precious"


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path):
    work = tmp_path / "demo"
    r = CliRunner().invoke(cli, ["demo", "--workdir", str(work), "--quick"])
    assert r.exit_code == 0, r.output
    assert "water_iou" in r.output and "report:" in r.output
    summary = json.loads((work / "demo.json").read_text())
    c = summary["counts"]
    assert c["read"] == summary["pairs"] == c["kept"] + sum(c["rejected"].values())
    assert c["rejected"].get("cloudy", 0) > 0  # the synthetic clouds are seen and filtered
    for who in ("pretrained", "simclr", "random"):
        assert 0 <= summary["water_iou"][who] <= 1
    for model in ("model", "model-simclr"):  # the profile's width is what both pre-trainings used
        assert json.loads((work / model / "config.json").read_text())["width"] == summary["width"]
    report = (work / "evaluation" / "report.md").read_text()
    assert "water IoU" in report or "Water IoU" in report
    assert (work / "evaluation" / "comparison.png").read_bytes()[:4] == b"\x89PNG"


def test_demo_reuses_its_own_folder(tmp_path):
    from senclr.evaluate.demo import MARKER, prepare_workdir

    prepare_workdir(str(tmp_path / "w"))
    (tmp_path / "w" / "old-output").write_text("from the last demo")
    prepare_workdir(str(tmp_path / "w"))
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == [MARKER]
