"""Earth Engine session setup and the fake Earth Engine server, driven through the real `ee` client.

These tests pin down what the export commands rely on: the exact REST requests the client sends,
export idempotency through requestId, operation polling, computePixels NPY, the client's own
retries (sleeps patched away), and authentication errors that are clear and never leak key material.
"""

import io
import json
import logging
import subprocess
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

import ee
import numpy as np
import pytest

from senclr.errors import InputError
from senclr.export.earthengine import session
from tests.fake_ee import Fault, fake_ee, fake_ee_server, find_calls  # noqa: F401

SECRET = "SENCLR-FAKE-SECRET-9f3c1d"
GRID = {"dimensions": {"width": 4, "height": 4}, "crsCode": "EPSG:32633",
        "affineTransform": {"scaleX": 10, "shearX": 0, "translateX": 500000,
                            "shearY": 0, "scaleY": -10, "translateY": 4000000}}


def _pixels(body):
    a = np.zeros((4, 4), dtype=[("VV", "<f4"), ("VH", "<f4")])
    a["VV"], a["VH"] = -10.0, -17.5
    return a


@pytest.fixture(scope="module")
def rsa_pem():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _key_file(path, server, pem):
    """A service-account key whose token endpoint is the fake server (generated key, not a secret)."""
    path.write_text(json.dumps({
        "type": "service_account", "project_id": server.project, "private_key_id": "fake",
        "private_key": pem, "client_email": f"robot@{server.project}.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": f"{server.url}/token"}))
    return str(path)


def test_connect_and_compute_sends_the_real_expression(fake_ee):
    assert [(r.method, r.path) for r in fake_ee.requests[-2:]] == [
        ("GET", "/$discovery/rest"), ("GET", "/v1/projects/senclr-test/algorithms")]
    assert fake_ee.requests[0].query["version"] == "v1"
    session.check_access()  # the default handler answers constant expressions
    fake_ee.compute = lambda expr: sum(find_calls(expr, "Number.add")[0].values())

    assert ee.Number(1).add(2).getInfo() == 3
    req = fake_ee.calls("value:compute")[-1]
    assert req.path == "/v1/projects/senclr-test/value:compute"
    assert find_calls(req.body["expression"], "Number.add") == [{"left": 1, "right": 2}]

    fake_ee.compute = lambda expr: [2, 3]  # find_calls also looks inside mapped functions
    assert ee.List([1, 2]).map(lambda x: ee.Number(x).add(1)).getInfo() == [2, 3]
    (mapped,) = find_calls(fake_ee.calls("value:compute")[-1].body["expression"], "Number.add")
    assert mapped["right"] == 1 and "argumentReference" in mapped["left"]


def test_image_export_is_an_operation_polled_to_success(fake_ee):
    task = ee.batch.Export.image.toCloudStorage(
        ee.Image(1), description="pairs-000", bucket="senclr-bucket", fileNamePrefix="raw/pairs-000",
        fileFormat="GeoTIFF", region=ee.Geometry.Rectangle([10, 45, 10.01, 45.01]), scale=10)
    task.start()

    (req,) = fake_ee.calls("image:export")
    assert req.path == "/v1/projects/senclr-test/image:export"
    assert req.body["fileExportOptions"] == {
        "fileFormat": "GEO_TIFF",
        "cloudStorageDestination": {"bucket": "senclr-bucket", "filenamePrefix": "raw/pairs-000"}}
    assert req.body["description"] == "pairs-000" and req.body["requestId"]
    assert find_calls(req.body["expression"], "Image.constant") == [{"value": 1}]
    assert find_calls(req.body["expression"], "Image.clipToBoundsAndScale")[0]["scale"] == 10
    assert task.name.startswith("projects/senclr-test/operations/")

    assert [task.status()["state"] for _ in range(3)] == ["RUNNING", "COMPLETED", "COMPLETED"]
    op = ee.data.getOperation(task.name)
    assert op["done"] and op["metadata"]["state"] == "SUCCEEDED"


def test_request_id_makes_export_idempotent_and_retryable(fake_ee):
    config = ee.batch.Export.table.toCloudStorage(
        ee.FeatureCollection([ee.Feature(None, {"a": 1})]), description="t", bucket="b",
        fileNamePrefix="q", fileFormat="TFRecord").config
    first = ee.data.exportTable("senclr-run1-task-0007", dict(config))
    assert ee.data.exportTable("senclr-run1-task-0007", dict(config))["name"] == first["name"]
    assert fake_ee.calls("table:export")[0].body["fileExportOptions"]["fileFormat"] == "TF_RECORD_TABLE"

    # The server starts the export but the answer is lost: the client retries with the same
    # requestId and gets the same operation back, so no duplicate task exists.
    fake_ee.fail_next(1, 503, endpoints=("table:export",), after_handling=True)
    again = ee.data.exportTable("senclr-run1-task-0008", dict(config))
    assert [r.status for r in fake_ee.calls("table:export", None)][-2:] == [503, 200]
    assert len(fake_ee.operations) == 2 and again["name"] in fake_ee.operations

    # Without a requestId the client does not retry an export at all.
    fake_ee.fail_next(1, 503, endpoints=("table:export",))
    with pytest.raises(ee.EEException, match="injected 503"):
        ee.data.exportTable("", dict(config))
    with pytest.raises(ee.EEException, match="Invalid requestId"):
        ee.data.exportTable("has spaces", dict(config))


def test_failed_cancelled_and_listed_operations(fake_ee):
    fake_ee.script = lambda body: ["PENDING", {"state": "FAILED", "error": {"code": 3, "message": "bad band"}}]
    failing = ee.batch.Export.image.toCloudStorage(ee.Image(1), description="f", bucket="b", fileNamePrefix="f")
    failing.start()
    status = failing.status()
    assert status["state"] == "FAILED" and status["error_message"] == "bad band"

    fake_ee.script = lambda body: ["PENDING", "RUNNING", "RUNNING", "SUCCEEDED"]
    running = ee.batch.Export.image.toCloudStorage(ee.Image(2), description="c", bucket="b", fileNamePrefix="c")
    running.start()
    running.cancel()
    assert fake_ee.calls("operations.cancel")[0].path == f"/v1/{running.name}:cancel"
    assert running.status()["state"] == "CANCELLED"

    fake_ee.page_size = 1  # force the client to follow nextPageToken
    assert sorted(t.config["description"] if t.config else t.status()["description"]
                  for t in ee.batch.Task.list()) == ["c", "f"]
    pages = fake_ee.calls("operations.list")
    assert [r.query.get("pageToken") for r in pages] == [None, "1"] and pages[0].query["pageSize"] == "500"
    assert ee.data.getOperation(running.name)["metadata"]["state"] == "CANCELLED"
    with pytest.raises(ee.EEException, match="not found"):
        ee.data.getOperation("projects/senclr-test/operations/NOPE")


def test_compute_pixels_returns_the_handler_array(fake_ee):
    fake_ee.compute_pixels = _pixels
    raw = ee.data.computePixels({"expression": ee.Image(1), "fileFormat": "NPY", "grid": GRID})
    assert isinstance(raw, bytes)  # "NPY" gives the raw np.save bytes ...
    arr = np.load(io.BytesIO(raw))
    np.testing.assert_array_equal(arr, _pixels(None))
    # ... "NUMPY_NDARRAY" sends fileFormat NPY too but decodes the array in the client.
    arr2 = ee.data.computePixels({"expression": ee.Image(1), "fileFormat": "NUMPY_NDARRAY", "grid": GRID})
    np.testing.assert_array_equal(arr2, arr)
    bodies = [r.body for r in fake_ee.calls("image:computePixels")]
    assert [b["fileFormat"] for b in bodies] == ["NPY", "NPY"] and bodies[0]["grid"] == GRID
    assert fake_ee.calls("image:computePixels")[0].path == "/v1/projects/senclr-test/image:computePixels"


def test_injected_429_500_are_retried_by_the_client_without_sleeping(fake_ee):
    fake_ee.compute_pixels = _pixels
    fake_ee.fail(0.2, codes=(429, 500), seed=0, endpoints=("image:computePixels",))
    t0 = time.perf_counter()
    got = [ee.data.computePixels({"expression": ee.Image(1), "fileFormat": "NUMPY_NDARRAY", "grid": GRID})
           for _ in range(50)]
    assert time.perf_counter() - t0 < 10
    assert all((a == _pixels(None)).all() for a in got)
    statuses = [r.status for r in fake_ee.calls("image:computePixels", None)]
    assert statuses.count(200) == 50 and {429, 500} <= set(statuses)
    assert len(fake_ee.sleeps) == len(statuses) - 50  # one (patched) backoff sleep per retry

    fake_ee.fail(0)
    fake_ee.fail_next(6, 503, endpoints=("image:computePixels",))  # 1 try + 5 retries, then it raises
    with pytest.raises(ee.EEException, match="injected 503"):
        ee.data.computePixels({"expression": ee.Image(1), "fileFormat": "NPY", "grid": GRID})


def test_concurrent_compute_pixels_from_threads(fake_ee):
    def slow(body):
        time.sleep(0.05)
        return _pixels(body)

    fake_ee.compute_pixels = slow
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: ee.data.computePixels(
            {"expression": ee.Image(1), "fileFormat": "NUMPY_NDARRAY", "grid": GRID}), range(12)))
    assert len(got) == 12 and all((a == _pixels(None)).all() for a in got)
    assert 2 <= fake_ee.max_in_flight["image:computePixels"] <= 4


def test_handler_faults_reach_the_client(fake_ee):
    def compute(expr):
        raise Fault(400, "Image.load: Image asset 'nope' not found.")

    fake_ee.compute = compute
    with pytest.raises(ee.EEException, match="asset 'nope' not found"):
        ee.Image("nope").getInfo()


def test_unauthorized_stops_before_work(fake_ee):
    fake_ee.unauthorized = True
    with pytest.raises(InputError) as err:
        session.check_access()
    msg = str(err.value)
    assert "earthengine authenticate" in msg and "--project" in msg and "--ee-credentials" in msg
    assert "gcloud auth application-default login --scopes=" in msg
    assert not fake_ee.calls("image:export", None)


def test_forbidden_project_is_explained(fake_ee):
    def compute(expr):
        raise Fault(403, "Earth Engine API has not been used in project senclr-test before or it is disabled.")

    fake_ee.compute = compute
    with pytest.raises(InputError, match="has not been used in project senclr-test.*registered for Earth Engine"):
        session.check_access()


def test_unauthorized_at_connect(fake_ee_server):
    fake_ee_server.unauthorized = True
    with pytest.raises(InputError, match="earthengine authenticate"):
        session.connect(fake_ee_server.project, "none", fake_ee_server.url)


def test_service_account_key_and_refused_refresh(fake_ee_server, rsa_pem, tmp_path):
    key = _key_file(tmp_path / "key.json", fake_ee_server, rsa_pem)
    session.connect(None, key, fake_ee_server.url)  # project taken from the key
    assert fake_ee_server.calls("token") and fake_ee_server.calls("token")[0].body is None  # JWT not logged
    session.check_access()

    fake_ee_server.unauthorized = True  # 401, and the token endpoint refuses a new token
    with pytest.raises(InputError, match="earthengine authenticate") as err:
        session.check_access()
    assert "invalid_grant" in str(err.value) and err.value.__cause__ is None
    assert [r.status for r in fake_ee_server.calls("value:compute", None)][-1] == 401
    assert fake_ee_server.calls("token", 400)  # google-auth tried to refresh, was refused: RefreshError


def test_default_credentials_use_adc(fake_ee_server, rsa_pem, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.config/earthengine/credentials
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", _key_file(tmp_path / "adc.json", fake_ee_server, rsa_pem))
    session.connect(None, "default", fake_ee_server.url)
    assert ee.Number(5).getInfo() == 5


def test_missing_credentials_or_project(tmp_path, monkeypatch):
    import google.auth.compute_engine._metadata as metadata

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setattr(metadata, "_NO_GCE_CHECK", True)  # no metadata-server probe
    with pytest.raises(InputError, match="no Earth Engine credentials.*earthengine authenticate"):
        session.connect("my-project", "default")
    with pytest.raises(InputError, match="no Cloud project.*--project"):
        session.connect(None, "none", "http://127.0.0.1:1")
    with pytest.raises(InputError, match="does not exist"):
        session.connect("p", str(tmp_path / "missing.json"))


def test_connect_to_a_local_server_skips_the_data_catalog_download(fake_ee_server, monkeypatch):
    fetched = []
    sentinel = lambda: fetched.append(1) or {}  # noqa: E731
    monkeypatch.setattr(ee.deprecation, "_FetchDataCatalogStac", sentinel)
    session.connect(fake_ee_server.project, "none", fake_ee_server.url)
    assert not fetched and ee.deprecation._FetchDataCatalogStac is sentinel


@pytest.mark.parametrize("url", [None, session.STANDARD_URL, session.HIGHVOLUME_URL, "http://example.com"])
def test_no_credentials_only_for_a_local_server(url):
    with pytest.raises(InputError, match="only works with a local fake server"):
        session.connect("my-project", "none", url)


@pytest.mark.parametrize("content", [
    f"not json {SECRET}",
    json.dumps({"type": "service_account", "project_id": "p", "client_email": "a@b", "token_uri": "x",
                "private_key": f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n"}),
    json.dumps({"type": "service_account", "private_key": SECRET}),
    json.dumps({"type": "authorized_user", "client_secret": SECRET, "refresh_token": SECRET}),
    json.dumps([SECRET]),
])
def test_bad_key_file_is_named_never_quoted(content, tmp_path, caplog, capsys):
    path = tmp_path / "leaky-key.json"
    path.write_text(content)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(InputError) as err:
        session.connect(None, str(path), "http://127.0.0.1:1")
    shown = "".join(traceback.format_exception(err.value))
    out, errs = capsys.readouterr()
    assert str(path) in str(err.value)
    assert SECRET not in shown and SECRET not in caplog.text and SECRET not in out + errs


def test_export_help_and_session_module_do_not_import_ee():
    code = ("import sys; from click.testing import CliRunner; from senclr.cli import cli; "
            "import senclr.export.earthengine.session; r = CliRunner().invoke(cli, ['export', '--help']); "
            "assert r.exit_code == 0, r.output; assert 'ee' not in sys.modules, 'ee imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
