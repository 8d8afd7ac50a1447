"""A small fake Earth Engine REST server, so tests drive the REAL `ee` client over HTTP offline.

Why a server and not mocks: the real client builds its API from the discovery document, checks
argument names against the real algorithm signatures, serialises expressions, retries 429/5xx and
decodes NPY exactly as it does against Google. The fake serves the discovery document and
algorithms.json shipped in the `earthengine-api` wheel (DESIGN.md section 5) and answers:

  POST /v1/projects/P/value:compute        -> {"result": server.compute(expression)}
  POST /v1/projects/P/image:computePixels  -> np.save bytes of server.compute_pixels(body)
  POST /v1/projects/P/{image,table}:export -> an Operation; the same requestId gives the same one
  GET  /v1/projects/P/operations[/ID]      -> Operations stepping through server.script(body);
                                              server.on_success(body) runs once a task succeeds
  POST /v1/projects/P/operations/ID:cancel -> state CANCELLED
  POST /v1/projects/P/maps                 -> {"name": "projects/P/maps/N"} (getMapId: a tile layer)
  GET  /v1/projects/P/maps/N/tiles/Z/X/Y   -> a 256 x 256 PNG
  POST /token                              -> an OAuth token (for service-account keys whose
                                              token_uri points here)

Handlers may raise `Fault(code, message)` to answer an Earth Engine error. Faults: `fail()` (random,
seeded), `fail_next()` (the next n requests; optionally after the handler ran, i.e. a lost
response) and `unauthorized` (401 everywhere, refused token refresh). `requests` logs every
request (method, path without query, endpoint, JSON body, status); `max_in_flight` the peak
concurrency per endpoint (to check a concurrency cap). `find_calls()` reads expressions;
`sampled_coordinates()` + `write_table()` make an `on_success` that writes what a table export of
`pixelCoordinates` samples really holds (the doctor's batch check). Use
the `fake_ee` fixture (connected) or `fake_ee_server` (not connected):
`from tests.fake_ee import fake_ee, fake_ee_server  # noqa: F401`.
"""

from __future__ import annotations

import io
import itertools
import json
import random
import re
import struct
import threading
import time
import types
import urllib.parse
import zlib
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
          409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
API = ("value:compute", "image:computePixels", "image:export", "table:export",
       "operations.get", "operations.list", "operations.cancel", "maps.create", "maps.tiles")
DEFAULT_SCRIPT = ("PENDING", "RUNNING", "SUCCEEDED")
DONE = {"SUCCEEDED", "FAILED", "CANCELLED"}
OPERATION_TYPE = "type.googleapis.com/google.earthengine.v1.OperationMetadata"


def _png(size: int = 256) -> bytes:
    """A grey ``size`` x ``size`` PNG: what a map tile answer looks like."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\x80" * size for _ in range(size))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


TILE_PNG = _png()


class Fault(Exception):
    """Raise from a handler (or inject) to answer an HTTP error in Google's JSON error shape."""

    def __init__(self, code: int, message: str = "fake Earth Engine error"):
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class Request:
    method: str
    path: str  # without the query string
    endpoint: str  # "value:compute", "operations.get", ... (see classify)
    query: dict
    body: Any  # parsed JSON, or None
    status: int = 0  # filled in when answered
    received: float = 0.0  # time.monotonic() when the handler began reading the body


@dataclass
class Call:
    """One decoded algorithm invocation: `Image.select` and its decoded arguments."""

    name: str
    args: dict = field(default_factory=dict)


def decode(expression: dict) -> Any:
    """Turn a serialised expression graph into Python: constants, lists, dicts and `Call`s."""
    values = expression.get("values", {})

    def node(v):
        if "valueReference" in v:
            return node(values[v["valueReference"]])
        if "constantValue" in v:
            return v["constantValue"]
        if "integerValue" in v:
            return int(v["integerValue"])
        if "bytesValue" in v:
            return v["bytesValue"]
        if "arrayValue" in v:
            return [node(x) for x in v["arrayValue"].get("values", [])]
        if "dictionaryValue" in v:
            return {k: node(x) for k, x in v["dictionaryValue"].get("values", {}).items()}
        if "argumentReference" in v:
            return {"argumentReference": v["argumentReference"]}
        if "functionDefinitionValue" in v:
            fd = v["functionDefinitionValue"]
            return {"function": fd.get("argumentNames", []), "body": node({"valueReference": fd["body"]})}
        fi = v["functionInvocationValue"]
        name = fi.get("functionName") or node({"valueReference": fi["functionReference"]})
        return Call(name, {k: node(x) for k, x in fi.get("arguments", {}).items()})

    return node({"valueReference": expression["result"]})


def find_calls(expression: dict, function_name: str) -> list[dict]:
    """Decoded argument dicts of every call to `function_name` anywhere in `expression`."""
    found = []

    def walk(x):
        if isinstance(x, Call):
            if x.name == function_name:
                found.append(x.args)
            x = x.args
        for y in x.values() if isinstance(x, dict) else x if isinstance(x, list) else ():
            walk(y)

    walk(decode(expression))
    return found


def sampled_coordinates(expression: dict, flip: bool = False) -> list[dict]:
    """The features a table export of ``Image.pixelCoordinates`` samples holds, as Earth Engine
    computes them: for each ``sample`` of ``neighborhoodToArray(Kernel.fixed)`` at a point, ``x``
    and ``y`` (float32, row-major) of the centres of the pixels the kernel covers in the sampling
    projection, its crsTransform, or without one the CRS's identity transform at ``scale`` (y up).
    ``flip`` reverses the rows, as a server that misorients arrays would."""
    features = []
    for s in find_calls(expression, "Image.sample"):
        image, kernel = s["image"].args["image"], s["image"].args["kernel"].args
        while image.name == "Image.reproject":
            image = image.args["image"]
        if s["image"].name != "Image.neighborhoodToArray" or image.name != "Image.pixelCoordinates":
            raise Fault(400, "fake Earth Engine: only samples of pixelCoordinates neighbourhoods are answered here")
        proj, point = s["projection"].args, s["region"].args
        if point["crs"].args["crs"] != proj["crs"]:
            raise Fault(400, "fake Earth Engine: the sample point must be in the sampling projection's CRS")
        scale = s.get("scale", 1.0)
        a, _, c, _, e, f = proj.get("transform") or (scale, 0, 0, 0, scale, 0)
        col, row = int(np.floor((point["coordinates"][0] - c) / a)), int(np.floor((point["coordinates"][1] - f) / e))
        j, i = np.meshgrid(np.arange(kernel["width"]) + col - kernel["x"], np.arange(kernel["height"]) + row - kernel["y"])
        x, y = c + (j + 0.5) * a, f + (i + 0.5) * e
        features.append({"x": x.ravel().astype(np.float32), "y": (y[::-1] if flip else y).ravel().astype(np.float32)})
    return features


def write_table(body: dict, features: list[dict]) -> None:
    """What a TFRecord table export writes on success: one gzip'd file of ``features`` (one
    tf.train.Example each) at ``gs://bucket/<filenamePrefix>.tfrecord.gz``."""
    import gzip

    from senclr import storage, tfrecord
    from senclr.example_proto import encode_example

    dest = body["fileExportOptions"]["cloudStorageDestination"]
    data = gzip.compress(tfrecord.encode_file(encode_example(f) for f in features))
    storage.write_bytes(f"gs://{dest['bucket']}/{dest['filenamePrefix']}.tfrecord.gz", data)


def constant_compute(expression: dict) -> Any:
    """Default `compute`: evaluates constant expressions (what `check_access` sends), else 400."""
    node = expression["values"][expression["result"]]
    if "constantValue" in node:
        return node["constantValue"]
    raise Fault(400, "fake Earth Engine: no compute handler for this expression (set server.compute)")


def _no_pixels(body: dict) -> np.ndarray:
    raise Fault(400, "fake Earth Engine: no computePixels handler (set server.compute_pixels)")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


class FakeEE:
    """The server's state and behaviour; the HTTP plumbing is in `_Handler`."""

    def __init__(self, project: str = "senclr-test"):
        import ee

        shipped = Path(ee.__file__).parent / "tests"
        discovery = json.loads((shipped / "cloud_api_discovery_document.json").read_text().replace("v1alpha", "v1"))
        # The shipped copy predates maps.create's workloadTag query parameter, which the service's own
        # document has and getMapId sends once a workload tag is set (as `senclr export` sets it).
        create = discovery["resources"]["projects"]["resources"]["maps"]["methods"]["create"]
        create["parameters"].setdefault("workloadTag", {"location": "query", "type": "string"})
        self.discovery = json.dumps(discovery).encode()
        self.algorithms = (shipped / "algorithms.json").read_bytes()
        self.project = project
        self.compute: Callable[[dict], Any] = constant_compute
        self.compute_pixels: Callable[[dict], np.ndarray] = _no_pixels
        self.script: Callable[[dict], Any] = lambda body: DEFAULT_SCRIPT  # export body -> states
        self.on_success: Callable[[dict], None] | None = None  # export body -> side effect (write the files)
        self.unauthorized = False
        self.page_size = 1000  # operations.list page size cap, lower it to exercise pageToken
        self.requests: list[Request] = []
        self.operations: dict[str, dict] = {}  # name -> {"op", "script", "step", "body"}
        self.maps: list[dict] = []  # the body of every maps.create, in order (map-1 is maps[0])
        self.errors: list[Exception] = []  # exceptions raised by test handlers (answered as 400)
        self.sleeps: list[float] = []  # backoff sleeps the client asked for (patched, not slept)
        self.max_in_flight: Counter = Counter()  # endpoint -> most concurrent requests seen
        self._in_flight: Counter = Counter()
        self._by_request_id: dict[str, str] = {}
        self._faults: dict[str, tuple] = {}
        self._next: list[list] = []
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._http.daemon_threads = True
        self._http.fake = self
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"

    def start(self) -> FakeEE:
        threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    # --- configuration --------------------------------------------------------------------------
    def fail(self, rate: float, codes=(429, 500, 503), seed: int = 0, endpoints=API) -> None:
        """Answer a random `rate` of requests to `endpoints` with one of `codes` (rate 0: off)."""
        rng = random.Random(seed)
        for e in endpoints:
            self._faults[e] = (rate, tuple(codes), rng)

    def fail_next(self, n: int, code: int = 503, endpoints=API, after_handling: bool = False) -> None:
        """Fail the next `n` requests to `endpoints`; `after_handling` runs the handler first (its
        side effects happen, e.g. the export is created) and then loses the response."""
        self._next.append([n, code, tuple(endpoints), after_handling])

    # --- inspection -----------------------------------------------------------------------------
    def calls(self, endpoint: str, status: int | None = 200) -> list[Request]:
        """Logged requests to `endpoint` ("value:compute", "image:export", ...) with that status."""
        return [r for r in self.requests if r.endpoint == endpoint and (status is None or r.status == status)]

    def operation(self, name_or_id: str) -> dict:
        name = name_or_id if "/" in name_or_id else f"projects/{self.project}/operations/{name_or_id}"
        return self.operations[name]["op"]

    # --- request handling -----------------------------------------------------------------------
    def classify(self, method: str, path: str) -> tuple[str, str]:
        """(endpoint, operation name or "") for a request path without its query."""
        if path == "/$discovery/rest":
            return "discovery", ""
        if path == "/token":
            return "token", ""
        prefix = f"/v1/projects/{self.project}/"
        if not path.startswith(prefix):
            return "unknown", ""
        rest = path[len(prefix):]
        if rest in ("algorithms", "value:compute", "image:computePixels", "image:export", "table:export"):
            return rest, ""
        if rest == "operations" and method == "GET":
            return "operations.list", ""
        if rest == "maps" and method == "POST":
            return "maps.create", ""
        if re.fullmatch(r"maps/[^/]+/tiles/\d+/\d+/\d+", rest) and method == "GET":
            return "maps.tiles", path[len("/v1/"):].split("/tiles/")[0]
        if rest.startswith("operations/"):
            name = path[len("/v1/"):]
            if name.endswith(":cancel") and method == "POST":
                return "operations.cancel", name[: -len(":cancel")]
            if method == "GET":
                return "operations.get", name
        return "unknown", ""

    def _injected(self, endpoint: str, after: bool) -> int | None:
        with self._lock:
            for rule in self._next:
                if rule[0] > 0 and endpoint in rule[2] and rule[3] == after:
                    rule[0] -= 1
                    return rule[1]
            rate, codes, rng = self._faults.get(endpoint, (0, (), None))
            if not after and rate and rng.random() < rate:
                return rng.choice(codes)
        return None

    def answer(self, req: Request, op_name: str) -> tuple[int, str, bytes]:
        """(status, content type, payload) for one request; the fault policy is applied here."""
        e = req.endpoint
        if self.unauthorized and e != "discovery":
            if e == "token":
                return 400, "application/json", b'{"error": "invalid_grant", "error_description": "fake: key revoked"}'
            raise Fault(401, "Request had invalid authentication credentials.")
        if e in API and (code := self._injected(e, after=False)):
            raise Fault(code, f"fake Earth Engine: injected {code}")
        result = self._dispatch(req, op_name)
        if e in API and (code := self._injected(e, after=True)):
            raise Fault(code, f"fake Earth Engine: injected {code} after handling")
        return result

    def _dispatch(self, req: Request, op_name: str) -> tuple[int, str, bytes]:
        e, body = req.endpoint, req.body or {}
        js = "application/json"
        if e == "discovery":
            return 200, js, self.discovery
        if e == "algorithms":
            return 200, js, self.algorithms
        if e == "token":
            return 200, js, b'{"access_token": "fake-access-token", "token_type": "Bearer", "expires_in": 3600}'
        if e == "value:compute":
            return 200, js, json.dumps({"result": self.compute(body["expression"])}).encode()
        if e == "maps.create":
            with self._lock:
                self.maps.append(body)
                return 200, js, json.dumps({"name": f"projects/{self.project}/maps/map-{len(self.maps)}"}).encode()
        if e == "maps.tiles":
            if not op_name.startswith(f"projects/{self.project}/maps/map-") or int(op_name.rsplit("-", 1)[1]) > len(self.maps):
                raise Fault(404, f"Map {op_name} not found.")
            return 200, "image/png", TILE_PNG
        if e == "image:computePixels":
            buf = io.BytesIO()
            np.save(buf, self.compute_pixels(body), allow_pickle=False)
            return 200, "application/octet-stream", buf.getvalue()
        with self._lock:
            if e in ("image:export", "table:export"):
                op = self._export(e, body)
            elif e == "operations.list":
                names = list(self.operations)
                start = int(req.query.get("pageToken", 0))
                size = min(int(req.query.get("pageSize", 1000)), self.page_size)
                op = {"operations": [self.operations[n]["op"] for n in names[start:start + size]]}
                if start + size < len(names):
                    op["nextPageToken"] = str(start + size)
            elif op_name not in self.operations:
                raise Fault(404, f"Operation {op_name} not found.")
            elif e == "operations.get":
                rec = self.operations[op_name]
                rec["step"] = min(rec["step"] + 1, len(rec["script"]) - 1)
                op = self._set_state(rec, rec["script"][rec["step"]])
            else:  # operations.cancel
                rec = self.operations[op_name]
                if not rec["op"]["done"]:
                    rec["script"], rec["step"] = [{"state": "CANCELLED"}], 0
                    self._set_state(rec, rec["script"][0])
                op = {}
        return 200, js, json.dumps(op).encode()

    def _export(self, endpoint: str, body: dict) -> dict:
        rid = body.get("requestId")
        if rid and not re.fullmatch(r"[A-Za-z0-9-]{1,60}", rid):  # the documented requestId format
            raise Fault(400, f"Invalid requestId {rid!r}: use a-z, A-Z, 0-9 or '-', at most 60 characters.")
        if rid and rid in self._by_request_id:  # EE's idempotency: same requestId, same operation
            return self.operations[self._by_request_id[rid]]["op"]
        name = f"projects/{self.project}/operations/FAKE{next(self._ids):06d}"
        script = [s if isinstance(s, dict) else {"state": s} for s in self.script(body)]
        kind = "EXPORT_IMAGE" if endpoint == "image:export" else "EXPORT_FEATURES"
        meta = {"@type": OPERATION_TYPE, "description": body.get("description", ""), "type": kind,
                "createTime": _now(), "attempt": 1}
        rec = {"op": {"name": name, "metadata": meta, "done": False}, "script": script, "step": 0, "body": body}
        self._set_state(rec, script[0])
        self.operations[name] = rec
        if rid:
            self._by_request_id[rid] = name
        return rec["op"]

    def _set_state(self, rec: dict, step: dict) -> dict:
        op, meta, state = rec["op"], rec["op"]["metadata"], step["state"]
        meta.update(state=state, updateTime=_now())
        if state != "PENDING":
            meta.setdefault("startTime", meta["updateTime"])
        op["done"] = step.get("done", state in DONE)  # a step may say otherwise: a malformed answer
        if state == "FAILED":
            op["error"] = step.get("error", {"code": 13, "message": "fake Earth Engine: export failed"})
        if state in ("RUNNING", "SUCCEEDED"):  # Earth Engine reports the EECU seconds used so far
            meta["batchEecuUsageSeconds"] = round(meta.get("batchEecuUsageSeconds", 0.0) + 1.5, 3)
        if state == "SUCCEEDED":
            if self.on_success and not rec.get("wrote"):  # what the task writes appears as it succeeds
                rec["wrote"] = True
                self.on_success(rec["body"])
            gcs = rec["body"].get("fileExportOptions", {}).get("cloudStorageDestination", {})
            if gcs:
                meta["destinationUris"] = [f"https://console.developers.google.com/storage/browser/"
                                           f"{gcs.get('bucket', '')}/{gcs.get('filenamePrefix', '')}"]
            op["response"] = {"@type": "type.googleapis.com/google.protobuf.Empty"}
        return op


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's requests.Session expects
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms stalls

    def log_message(self, *args):  # quiet: the request log is the record
        pass

    def _handle(self):
        received = time.monotonic()
        fake: FakeEE = self.server.fake
        url = urllib.parse.urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        endpoint, op_name = fake.classify(self.command, url.path)
        # The token request carries a signed JWT: never logged. Other bodies are JSON.
        body = json.loads(raw) if raw and endpoint != "token" else None
        query = dict(urllib.parse.parse_qsl(url.query))
        req = Request(self.command, url.path, endpoint, query, body, received=received)
        with fake._lock:
            fake.requests.append(req)
            fake._in_flight[endpoint] += 1
            fake.max_in_flight[endpoint] = max(fake.max_in_flight[endpoint], fake._in_flight[endpoint])
        try:
            if endpoint == "unknown":
                raise Fault(404, f"fake Earth Engine: no route for {self.command} {url.path}")
            status, ctype, payload = fake.answer(req, op_name)
        except Exception as e:  # noqa: BLE001 - a broken handler answers 400 (not retried), not a hang
            f = e if isinstance(e, Fault) else Fault(400, f"fake Earth Engine: handler raised {e!r}")
            if not isinstance(e, Fault):
                fake.errors.append(e)
            status, ctype = f.code, "application/json"
            payload = json.dumps({"error": {"code": f.code, "message": f.message,
                                            "status": STATUS.get(f.code, "UNKNOWN")}}).encode()
        with fake._lock:
            fake._in_flight[endpoint] -= 1
        req.status = status
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = _handle


@pytest.fixture
def fake_ee_server(monkeypatch):
    """A running FakeEE, with the client's backoff sleeps recorded instead of slept and the data
    catalog fetch (an internet call inside ee.Initialize) disabled; the `ee` session is reset after."""
    import ee
    import googleapiclient.http

    server = FakeEE().start()
    # googleapiclient.http uses its `time` module only for the retry sleep, bound per request.
    monkeypatch.setattr(googleapiclient.http, "time", types.SimpleNamespace(sleep=server.sleeps.append))
    monkeypatch.setattr(ee.deprecation, "_FetchDataCatalogStac", lambda: {})
    ee.Reset()
    try:
        yield server
    finally:
        ee.Reset()
        server.stop()


@pytest.fixture
def fake_ee(fake_ee_server):
    """FakeEE with the real client connected to it: project senclr-test, no credentials."""
    from senclr.export.earthengine.session import connect

    connect(project=fake_ee_server.project, credentials="none", api_url=fake_ee_server.url)
    return fake_ee_server
