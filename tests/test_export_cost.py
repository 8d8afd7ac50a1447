"""The EECU-hour estimate: linear in pairs and in pixels x bands, calibratable, in the plan JSON,
and a warning (never a refusal) over the default noncommercial tier, in `plan` and in `run`."""

import json
import os

import pytest
from click.testing import CliRunner

from senclr.cli import cli
from senclr.export.earthengine import cost
from tests.fake_ee import fake_ee_server  # noqa: F401
from tests.test_export_ee import ARGS, ee_server  # noqa: F401


def test_the_estimate_is_linear_in_pairs_and_in_pixels_times_bands():
    one = cost.estimate(1000, 128, "l1c", "highvolume")["eecu_hours"]
    assert cost.estimate(4000, 128, "l1c", "highvolume")["eecu_hours"] == pytest.approx(4 * one, rel=1e-3)
    pixels = lambda size, level: cost.per_pair_seconds(size, level) - cost.PAIR_OVERHEAD_S  # noqa: E731
    assert pixels(256, "l1c") == pytest.approx(4 * pixels(128, "l1c"))  # 4x the pixels
    assert pixels(128, "l1c") / pixels(128, "l2a") == pytest.approx(16 / 15)  # 16 bands a L1C pair, 15 a L2A one
    assert pixels(128, "l1c") < cost.per_pair_seconds(128, "l1c", labels=("Map",)) - cost.PAIR_OVERHEAD_S


def test_batch_adds_its_task_start_up_and_a_measured_figure_replaces_the_model():
    hv, batch = cost.estimate(3000, 128, "l1c", "highvolume"), cost.estimate(3000, 128, "l1c", "batch", tasks=3)
    assert batch["eecu_hours"] == pytest.approx(hv["eecu_hours"] + 3 * cost.TASK_OVERHEAD_S / 3600, abs=1e-3)
    assert "model, not a measurement" in hv["basis"] and not hv["calibrated"]
    measured = cost.estimate(3600, 128, "l1c", "batch", tasks=4, eecu_per_pair=2.5)
    assert measured["eecu_hours"] == 2.5 and measured["calibrated"] and "--eecu-per-pair" in measured["basis"]


def test_the_warning_comes_above_the_default_tier_only():
    per_hour = 3600 / cost.per_pair_seconds(128, "l1c")  # pairs in one EECU-hour
    below = cost.estimate(int(149 * per_hour), 128, "l1c", "highvolume")
    above = cost.estimate(int(151 * per_hour), 128, "l1c", "highvolume")
    assert not below["over_tier"] and cost.warning(below) is None
    assert above["over_tier"] and above["tier"] == {"name": "Community", "eecu_hours_per_month": 150}
    message = cost.warning(above)
    assert "151" in message and "150 EECU-hours a month" in message and "--eecu-per-pair" in message


def _invoke(args):
    return CliRunner().invoke(cli, ["export", *args], catch_exceptions=False)


def test_plan_states_the_estimate_in_its_json_and_warns_without_refusing(ee_server, tmp_path):
    out = str(tmp_path / "plan")
    r = _invoke(["plan", *ARGS, "--out", out, "--ee-api-url", ee_server.url])
    assert r.exit_code == 0 and "estimated compute" in r.stdout and "warning" not in r.stderr
    plan = json.loads(open(os.path.join(out, "plan.json")).read())
    assert plan["cost"] == cost.estimate(12, 32, "l1c", "highvolume") and plan["requests"] == 12

    r = _invoke(["plan", *ARGS, "--out", out, "--ee-api-url", ee_server.url, "--eecu-per-pair", "50000"])
    assert r.exit_code == 0, r.output  # a warning, not a refusal
    plan = json.loads(open(os.path.join(out, "plan.json")).read())
    assert plan["cost"]["eecu_hours"] == pytest.approx(12 * 50000 / 3600) and plan["cost"]["over_tier"]
    assert "warning" in r.stderr and "150 EECU-hours a month" in r.stderr and "warning" not in r.stdout


def test_run_warns_before_fetching_anything_and_goes_on(ee_server, tmp_path, monkeypatch):
    warned, fetch = [], ee_server.compute_pixels
    real = cost.warning
    monkeypatch.setattr(cost, "warning", lambda c: warned.append(c) or real(c))

    def pixels(body):
        assert warned, "a pair was fetched before the cost warning"
        return fetch(body)

    ee_server.compute_pixels = pixels
    r = _invoke(["run", *ARGS, "--out", str(tmp_path / "raw"), "--ee-api-url", ee_server.url, "--eecu-per-pair", "50000"])
    assert r.exit_code == 0, r.output
    assert "warning" in r.stderr and "done 12 of 12" in r.stdout


def test_bad_calibration_exits_2_before_any_request(ee_server, tmp_path):
    r = CliRunner().invoke(cli, ["export", "plan", *ARGS, "--out", str(tmp_path / "p"), "--ee-api-url", ee_server.url,
                                 "--eecu-per-pair", "0"])
    assert r.exit_code == 2 and "--eecu-per-pair" in r.output and not ee_server.requests


def test_status_gives_the_measured_figure_to_calibrate_with(ee_server, gcs, tmp_path):
    out = f"{gcs}/{tmp_path.name}"
    r = _invoke(["run", *ARGS, "--out", out, "--ee-api-url", ee_server.url, "--mode", "batch", "--poll-seconds", "0"])
    assert r.exit_code == 0, r.output
    r = _invoke(["status", "--out", out, "--offline"])
    [line] = [x for x in r.output.splitlines() if "--eecu-per-pair" in x]
    assert float(line.split("--eecu-per-pair ")[1].split()[0]) > 0
