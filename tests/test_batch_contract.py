"""export/earthengine/batch.py's task bookkeeping at its edges (issue 12, mutation check): a rerun's new
attempt budget, and that status and cancel leave finished tasks alone."""

from click.testing import CliRunner

from senclr.cli import cli
from senclr.export.earthengine import ledger
from tests.fake_ee import fake_ee_server  # noqa: F401
from tests.test_export_ee import _batch_args, _invoke, ee_server  # noqa: F401


def test_a_rerun_gives_a_task_that_failed_for_good_exactly_three_more_attempts(ee_server, gcs, tmp_path):
    ee_server.script = lambda body: [{"state": "FAILED", "error": {"code": 13, "message": "internal"}}]
    args = _batch_args(gcs, ee_server, tmp_path.name, patches="20")
    for attempts in (3, 6):
        assert CliRunner().invoke(cli, ["export", *args]).exit_code == 1
        assert len(ee_server.calls("table:export")) == attempts
    (record,) = ledger.tasks(f"{gcs}/{tmp_path.name}").values()
    assert record["attempts"] == 6 and record["final"] and record["state"] == "FAILED"


def test_status_and_cancel_leave_finished_tasks_alone(ee_server, gcs, tmp_path):
    args = _batch_args(gcs, ee_server, tmp_path.name, patches="20")
    assert _invoke(args).exit_code == 0
    out = f"{gcs}/{tmp_path.name}"
    polled = len(ee_server.calls("operations.get"))
    conn = ["--project", "senclr-test", "--ee-credentials", "none", "--ee-api-url", ee_server.url]
    assert _invoke(["status", "--out", out, *conn]).exit_code == 0
    r = _invoke(["cancel", "--out", out, *conn])
    assert r.exit_code == 0 and "cancelled 0 task" in r.output, r.output
    assert len(ee_server.calls("operations.get")) == polled and not ee_server.calls("operations.cancel", status=None)
    assert {t["state"] for t in ledger.tasks(out).values()} == {"SUCCEEDED"}


def test_status_polls_a_running_task_and_records_its_new_state(ee_server, gcs, tmp_path):
    from senclr.export.earthengine import batch
    from tests.test_export_ee import submit_one_task

    ee_server.script = lambda body: ["PENDING", "RUNNING", "SUCCEEDED"]
    out = f"{gcs}/{tmp_path.name}"
    record = submit_one_task(ee_server, out)
    batch.refresh(out)
    assert len(ee_server.calls("operations.get")) == 1
    assert ledger.tasks(out)[record["name"]]["state"] == "RUNNING"
