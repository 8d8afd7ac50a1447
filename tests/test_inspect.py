"""`senclr inspect` on a dataset, a raw archive and a folder that is neither."""

import numpy as np
from click.testing import CliRunner

from senclr.cli import cli
from tests.helpers import random_pair, write_raw_archive, write_tiny_dataset


def test_inspect_dataset(tmp_path):
    write_tiny_dataset(str(tmp_path), n=8, size=8)
    r = CliRunner().invoke(cli, ["inspect", str(tmp_path), "-n", "2"])
    assert r.exit_code == 0, r.output
    assert "kind: dataset" in r.output and "splits: train 4, val 2, test 2 in 3 shards" in r.output
    assert r.output.index("VV ") < r.output.index("B1 ")  # statistics in band order
    rows = [line for line in r.output.splitlines() if line[:16].isalnum() and len(line.split()) == 8]
    assert len(rows) == 2


def test_inspect_raw_archive(tmp_path):
    rng = np.random.default_rng(0)
    write_raw_archive(str(tmp_path), [random_pair(rng, 8, i) for i in range(3)], patch_size=8)
    r = CliRunner().invoke(cli, ["inspect", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "kind: raw" in r.output and "ASCENDING" in r.output and "(8, 8)" in r.output


def test_inspect_bad_input_exits_2(tmp_path):
    runner = CliRunner()
    r = runner.invoke(cli, ["inspect", str(tmp_path / "nowhere")])
    assert r.exit_code == 2 and "no manifest" in r.output
    assert runner.invoke(cli, ["inspect", str(tmp_path), "-n", "-1"]).exit_code == 2


def test_inspect_batch_export_shows_its_table_records(tmp_path):
    from tests.helpers import write_batch_export

    rng = np.random.default_rng(1)
    pairs = [random_pair(rng, 8, i) for i in range(4)]
    write_batch_export(str(tmp_path), pairs, per_task=2)
    r = CliRunner().invoke(cli, ["inspect", str(tmp_path), "-n", "3"])
    assert r.exit_code == 0, r.output
    assert sum(p.pair_id in r.output for p in pairs) == 3
