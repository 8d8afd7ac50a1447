"""`senclr export doctor` against fake servers: one that answers truthfully, one that flips rows
(through computePixels or in a batch task's arrays), one that serves any size. The real client
sends the very requests the real service would get."""

import numpy as np
import pytest
from click.testing import CliRunner

from senclr.cli import cli
from senclr.export.earthengine.limits import COMPUTE_PIXELS_MAX_BYTES
from senclr import storage
from tests.fake_ee import Fault, fake_ee_server, find_calls, sampled_coordinates, write_table  # noqa: F401


def pixels(flip: bool = False, limit: bool = True):
    """computePixels as Earth Engine answers it: pixelCoordinates at each pixel's centre on the
    request's grid (rows north-south flipped when ``flip``), constants refused over 48 MiB."""

    def answer(body):
        g = body["grid"]
        t, w, h = g["affineTransform"], g["dimensions"]["width"], g["dimensions"]["height"]
        if find_calls(body["expression"], "Image.pixelCoordinates"):
            j, i = np.meshgrid(np.arange(w), np.arange(h))
            arr = np.zeros((h, w), [("x", "<f8"), ("y", "<f8")])
            arr["x"] = t["translateX"] + (j + 0.5) * t["scaleX"]
            arr["y"] = t["translateY"] + (i + 0.5) * t["scaleY"]
            if flip:
                arr["y"] = arr["y"][::-1]
            return arr
        [const] = find_calls(body["expression"], "Image.constant")
        n = len(const["value"])
        size = w * h * n * (4 + 1)  # float32 bands, plus the mask byte
        if limit and size > COMPUTE_PIXELS_MAX_BYTES:
            raise Fault(400, f"Total request size ({size} bytes) must be less than or equal to {COMPUTE_PIXELS_MAX_BYTES} bytes.")
        return np.zeros((h, w), [(f"constant_{k}", "<f4") for k in range(n)])

    return answer


def _doctor(server, *extra):
    return CliRunner().invoke(cli, ["export", "doctor", "--project", "senclr-test", "--ee-credentials", "none",
                                    "--ee-api-url", server.url, *extra])


def test_every_check_passes_against_a_truthful_server(fake_ee_server):
    fake_ee_server.compute_pixels = pixels()
    r = _doctor(fake_ee_server)
    assert r.exit_code == 0, r.output
    assert [line.split()[:2] for line in r.output.splitlines()] == [["PASS", "access"], ["PASS", "grid"],
                                                                    ["SKIP", "batch"], ["PASS", "size"]]
    assert "pass --out gs://" in r.output.splitlines()[2] and not fake_ee_server.calls("table:export", status=None)
    sizes = [c.body["grid"]["dimensions"]["width"] for c in fake_ee_server.calls("image:computePixels", status=None)]
    assert sizes[1:] == [792, 794]  # 16 float32 bands: 80 bytes a pixel, 792 px is the largest even side


@pytest.mark.parametrize("server, failing, words", [
    (dict(flip=True), "grid", "north-south flipped"),
    (dict(limit=False), "size", "allows more than senclr plans"),
])
def test_a_server_that_breaks_a_rule_fails_that_check(fake_ee_server, server, failing, words):
    fake_ee_server.compute_pixels = pixels(**server)
    r = _doctor(fake_ee_server)
    assert r.exit_code == 1
    [line] = [x for x in r.output.splitlines() if x.split()[1] == failing]
    assert line.startswith("FAIL") and words in line
    assert sum(x.startswith("PASS") for x in r.output.splitlines()) == 2


def test_no_access_fails_first_and_stops(fake_ee_server):
    fake_ee_server.unauthorized = True
    r = _doctor(fake_ee_server)
    assert r.exit_code == 1 and r.output.startswith("FAIL  access") and len(r.output.splitlines()) == 1
    assert not fake_ee_server.calls("image:computePixels", status=None)


def batch_output(flip: bool = False):
    """What the doctor's table export writes as the task succeeds (rows flipped when ``flip``)."""
    return lambda body: write_table(body, sampled_coordinates(body["expression"], flip))


def test_the_batch_check_passes_on_the_same_grid_and_leaves_nothing_behind(fake_ee_server, gcs, tmp_path):
    fake_ee_server.compute_pixels = pixels()
    fake_ee_server.on_success = batch_output()
    out = f"{gcs}/{tmp_path.name}"
    r = _doctor(fake_ee_server, "--out", out, "--poll-seconds", "0")
    assert r.exit_code == 0, r.output
    assert [line.split()[0] for line in r.stdout.splitlines()] == ["PASS"] * 4
    [line] = [x for x in r.stdout.splitlines() if x.split()[1] == "batch"]
    assert "both modes agree" in line and "_senclr_doctor" in line and "deleted" in line
    assert "waiting up to 900 s" in r.stderr and "SUCCEEDED" in r.stderr  # what it waited for, and how long at most
    [task] = fake_ee_server.calls("table:export")
    dest = task.body["fileExportOptions"]["cloudStorageDestination"]
    assert dest["filenamePrefix"].startswith(f"{tmp_path.name}/_senclr_doctor/tasks/senclr-doctor-")
    [sample] = find_calls(task.body["expression"], "Image.sample")
    grid = fake_ee_server.calls("image:computePixels")[0].body["grid"]["affineTransform"]
    assert sample["projection"].args["transform"] == [grid[k] for k in ("scaleX", "shearX", "translateX", "shearY",
                                                                        "scaleY", "translateY")]
    assert not list(storage.list_files(out))  # the doctor deleted what its task wrote


@pytest.mark.parametrize("flip_pixels, flip_batch, words", [
    (False, True, "north-south flipped in the task's arrays"),
    (True, False, "differ from computePixels' answer"),
])
def test_a_batch_grid_that_does_not_match_fails_the_batch_check(fake_ee_server, gcs, tmp_path, flip_pixels,
                                                                 flip_batch, words):
    fake_ee_server.compute_pixels = pixels(flip=flip_pixels)
    fake_ee_server.on_success = batch_output(flip=flip_batch)
    out = f"{gcs}/{tmp_path.name}"
    r = _doctor(fake_ee_server, "--out", out, "--poll-seconds", "0")
    assert r.exit_code == 1
    [line] = [x for x in r.stdout.splitlines() if x.split()[1] == "batch"]
    assert line.startswith("FAIL") and words in line and "would" in line
    assert not list(storage.list_files(out))


def test_a_task_that_does_not_finish_in_time_is_cancelled_and_fails(fake_ee_server, gcs, tmp_path):
    fake_ee_server.compute_pixels = pixels()
    fake_ee_server.script = lambda body: ("PENDING",)  # Earth Engine's queue never gets to it
    r = _doctor(fake_ee_server, "--out", f"{gcs}/{tmp_path.name}", "--batch-timeout", "0", "--poll-seconds", "0")
    assert r.exit_code == 1
    [line] = [x for x in r.stdout.splitlines() if x.split()[1] == "batch"]
    assert line.startswith("FAIL") and "still PENDING" in line and "cancelled" in line and "--batch-timeout" in line
    [op] = fake_ee_server.operations
    assert fake_ee_server.operation(op)["metadata"]["state"] == "CANCELLED"


def test_an_out_that_is_not_cloud_storage_exits_2_before_any_request(fake_ee_server, tmp_path):
    r = _doctor(fake_ee_server, "--out", str(tmp_path))
    assert r.exit_code == 2 and "gs://BUCKET" in r.output and not fake_ee_server.requests
