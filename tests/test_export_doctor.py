"""`senclr export doctor` against fake servers: one that answers truthfully, one that flips rows,
one that serves any size. The real client sends the very requests the real service would get."""

import numpy as np
import pytest
from click.testing import CliRunner

from senclr.cli import cli
from senclr.export.limits import COMPUTE_PIXELS_MAX_BYTES
from tests.fake_ee import Fault, fake_ee_server, find_calls  # noqa: F401


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
                                                                    ["PASS", "size"]]
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
