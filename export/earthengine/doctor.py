"""``senclr export doctor``: the live self-check to run once before a large export.

Each check asks the real service something whose answer senclr can predict exactly:

1. ``access``: credentials, and the project registered for Earth Engine (one trivial compute).
2. ``grid``: computePixels of ``ee.Image.pixelCoordinates`` on a patch grid as ``run`` cuts it
   (``Patch.transform``, north up). Every pixel must hold its own centre's coordinates: a row
   flipped north-south, or the grid shifted by any fraction of a pixel, fails it.
3. ``batch grid``: the same image through a tiny export task built as batch mode builds its
   tasks (``query.grid_samples``: reprojected onto the patch grid, a P x P neighbourhood
   sampled in it, a TFRecord table on Cloud Storage). The doctor waits for the task, reads the
   file back as ``run`` does, checks every pixel's centre again and that the arrays equal
   computePixels' answer: both modes cut the same pixels. It needs ``--out gs://BUCKET/PREFIX``
   (else SKIP, never a failure) and deletes its own output (under ``PREFIX/_senclr_doctor/``).
4. ``size limit``: a request of exactly the largest side senclr allows for its band layout is
   answered, and the next even side is refused, so the byte rule senclr plans with (pixels x
   bands x (bytes + 1 mask byte) <= 48 MiB) is the server's.
"""

from __future__ import annotations

import io
import time
import uuid
from dataclasses import dataclass
from typing import Callable

import numpy as np

from senclr import storage
from senclr.errors import InputError

from . import session, limits
from .grid import UtmGrid
from .query import affine_transform

GRID_CRS, GRID_CELL, GRID_SIZE, GRID_SCALE = "EPSG:32632", (7237, 62290), 8, 10.0  # a patch near 10°E, 45°N
PROBE_BANDS = 16  # float32 bands of the size probe: as many as an L1C pair, at the widest dtype
DOCTOR_DIR = "_senclr_doctor"  # under --out: the doctor's own task output, deleted after reading
WORKLOAD_TAG = "senclr-doctor"  # what the checks cost shows under this tag in the Cloud console
TOLERANCE_M = 1e-3


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: skipped (shown, never a failure)
    detail: str

    @property
    def state(self) -> str:
        return "SKIP" if self.ok is None else "PASS" if self.ok else "FAIL"


def check_out(out: str | None) -> str | None:
    """``--out`` as the batch check needs it: a gs:// prefix naming a bucket (export tasks write
    only to Cloud Storage); InputError before any request otherwise."""
    if out is None or not str(out).strip():
        return None
    out = str(out).strip().rstrip("/")
    if not out.startswith("gs://") or not out[len("gs://"):].split("/")[0]:
        raise InputError(f"--out {out!r} is not gs://BUCKET[/PREFIX]: the batch check runs an Earth Engine export "
                         "task, which can only write to Cloud Storage")
    return out


def _patch():
    return UtmGrid(GRID_CRS, GRID_SIZE, GRID_SCALE).patch(*GRID_CELL, polygon=None)


def _coordinates(patch):
    import ee

    return ee.Image.pixelCoordinates(ee.Projection(patch.crs))


def _pixels(image, patch, size: int | None = None) -> np.ndarray:
    import ee

    size = size or patch.size_px
    data = ee.data.computePixels({"expression": image, "fileFormat": "NPY",
                                  "grid": {"dimensions": {"width": size, "height": size},
                                           "affineTransform": affine_transform(patch), "crsCode": patch.crs}})
    return np.load(io.BytesIO(data), allow_pickle=False)


def _misplaced(x: np.ndarray, y: np.ndarray, patch, dtype=np.float64) -> str | None:
    """Why pixel (i, j) does not hold x0 + (j + 0.5) s, y0 - (i + 0.5) s (in ``dtype``), or None."""
    j, i = np.meshgrid(np.arange(patch.size_px), np.arange(patch.size_px))
    want_x = (patch.x0 + (j + 0.5) * patch.scale).astype(dtype).astype(np.float64)
    want_y = (patch.y0 - (i + 0.5) * patch.scale).astype(dtype).astype(np.float64)
    dx, dy = np.abs(x - want_x).max(), np.abs(y - want_y).max()
    if dx <= TOLERANCE_M and dy <= TOLERANCE_M:
        return None
    if np.abs(y[::-1] - want_y).max() <= TOLERANCE_M:
        return "rows come north-south flipped"
    return f"off by up to {dx:.3f} m east, {dy:.3f} m north"


def check_grid() -> Check:
    """Pixel (i, j) of a north-up patch grid holds x0 + (j + 0.5) s, y0 - (i + 0.5) s."""
    patch = _patch()
    got = _pixels(_coordinates(patch), patch)
    if got.shape != (patch.size_px,) * 2 or set(got.dtype.names or ()) != {"x", "y"}:
        return Check("grid", False, f"unexpected answer {got.dtype.names} {got.shape}")
    why = _misplaced(got["x"], got["y"], patch)
    if why:
        return Check("grid", False, f"{why} on {patch.crs} at ({patch.x0:.0f}, {patch.y0:.0f}): patches would be misplaced")
    return Check("grid", True, f"{patch.size_px}x{patch.size_px} px at {patch.scale:g} m on {patch.crs}: every pixel "
                               "at its centre, north up")


def _wait(op: dict, timeout_s: float, poll_s: float, say: Callable[[str], None]) -> dict:
    """Poll the task's operation until it is done or ``timeout_s`` passed; say each state change."""
    import ee

    start, last = time.monotonic(), None
    while True:
        meta = op.get("metadata", {})
        state, elapsed = meta.get("state", "PENDING"), time.monotonic() - start
        if state != last:
            say(f"batch grid: task {meta.get('description', '?')} ({op['name']}) is {state} after {elapsed:.0f} s "
                f"(waiting up to {timeout_s:.0f} s for it to finish)")
            last = state
        if op.get("done") or elapsed >= timeout_s:
            return op
        time.sleep(poll_s)
        op = ee.data.getOperation(op["name"])


def _read_back(root: str, name: str) -> list[dict] | None:
    """The features task ``name`` wrote, found and read as ``run`` finds and reads a task's files
    (None: no file where ``run`` would look)."""
    from senclr import tfrecord
    from senclr.example_proto import decode_example

    from .batch import task_files

    files = task_files(root, name)
    return [decode_example(r, arrays=True) for uri in files for r in tfrecord.read_file(uri)] if files else None


def _clean(root: str, name: str) -> str:
    """Delete what task ``name`` wrote; a sentence saying so, or what is left to delete by hand."""
    where = storage.join(root, "tasks", f"{name}*")
    try:
        for uri in storage.list_files(storage.join(root, "tasks"), f"{name}*"):
            storage.remove(uri)
    except Exception as e:  # noqa: BLE001 - the check's verdict stands; say what to delete
        return f"could not delete {where} ({type(e).__name__}): delete it yourself"
    return f"its output ({where}) deleted"


def _cancel(operation: str) -> str:
    import ee

    try:
        ee.data.cancelOperation(operation)
    except Exception as e:  # noqa: BLE001 - the reason it stopped matters more; say what is left
        return f"could not cancel it ({type(e).__name__}): cancel {operation} yourself"
    return "cancelled"


def check_batch(out: str | None, timeout_s: float = 900.0, poll_s: float = 10.0,
                say: Callable[[str], None] = print) -> Check:
    """A tiny batch task of pixelCoordinates on the patch grid: every pixel at its centre, as computePixels has it."""
    if not out:
        return Check("batch grid", None, "skipped: pass --out gs://BUCKET/PREFIX to run a tiny export task of the "
                                         "same grid (the doctor deletes what it writes)")
    import ee

    from . import query

    patch, name = _patch(), f"senclr-doctor-{uuid.uuid4().hex[:12]}"
    root = storage.join(out, DOCTOR_DIR)
    bucket, prefix = storage.split_gcs(storage.join(root, "tasks", name))
    task = ee.batch.Export.table.toCloudStorage(
        collection=query.grid_samples(_coordinates(patch), patch), description=name, bucket=bucket,
        fileNamePrefix=prefix, fileFormat="TFRecord", selectors=["x", "y"])
    op = ee.data.exportTable(name, task.config)
    cancelled = "not cancelled"
    try:
        op = _wait(op, timeout_s, poll_s, say)
    finally:
        if not op.get("done"):  # timed out, interrupted or broken: leave no task behind
            cancelled = _cancel(op["name"])
    state = op.get("metadata", {}).get("state", "PENDING")
    if not op.get("done"):
        return Check("batch grid", False, f"task {name} still {state} after {timeout_s:.0f} s, {cancelled}: Earth "
                                          "Engine's batch queue is slow now; rerun with a larger --batch-timeout")
    if state != "SUCCEEDED" or "error" in op:
        message = op.get("error", {}).get("message", "no message")
        return Check("batch grid", False, f"task {name} {state.lower()}: {message}; {_clean(root, name)}")
    try:
        features = _read_back(root, name)
    finally:
        cleaned = _clean(root, name)
    p = patch.size_px
    if features is None:
        return Check("batch grid", False, f"task {name} succeeded but no file {name}.tfrecord.gz or {name}-N... is "
                                          f"under {storage.join(root, 'tasks')}: `run` would not find batch output "
                                          f"either; {cleaned}")
    if len(features) != 1 or any(len(f.get(b, ())) != p * p for f in features for b in ("x", "y")):
        shapes = [{b: len(v) for b, v in f.items()} for f in features]
        return Check("batch grid", False, f"task {name} wrote {len(features)} feature(s) {shapes}, expected one with "
                                          f"x and y of {p}x{p} values; {cleaned}")
    x, y = (features[0][b].reshape(p, p).astype(np.float64) for b in ("x", "y"))
    why = _misplaced(x, y, patch, np.float32)  # TFRecord tables hold float32
    if why:
        return Check("batch grid", False, f"{why} in the task's arrays on {patch.crs} at ({patch.x0:.0f}, "
                                          f"{patch.y0:.0f}): batch patches would be misplaced; {cleaned}")
    hv = _pixels(_coordinates(patch), patch)
    if not (np.array_equal(hv["x"].astype(np.float32), x) and np.array_equal(hv["y"].astype(np.float32), y)):
        return Check("batch grid", False, f"the task's arrays differ from computePixels' answer for the same grid: "
                                          f"batch and high-volume exports would disagree; {cleaned}")
    eecu = op.get("metadata", {}).get("batchEecuUsageSeconds")
    cost = f", {float(eecu):g} EECU-seconds" if eecu is not None else ""
    return Check("batch grid", True, f"task {name}{cost}: {p}x{p} px, every pixel at its centre, north up, "
                                     f"equal to computePixels' answer (both modes agree); {cleaned}")


def check_size_limit() -> Check:
    """The largest side senclr allows for PROBE_BANDS float32 bands is served; the next is refused."""
    import ee

    side = limits.largest_side(["float32"] * PROBE_BANDS)
    patch = _patch()
    image = ee.Image.constant([0] * PROBE_BANDS).toFloat()
    try:
        _pixels(image, patch, side)
    except ee.EEException as e:
        return Check("size limit", False, f"{side} px x {PROBE_BANDS} float32 bands was refused ({e}): the server "
                                          "counts request bytes differently from senclr's plan")
    try:
        _pixels(image, patch, side + 2)
    except ee.EEException:
        return Check("size limit", True, f"{side} px x {PROBE_BANDS} float32 bands served, {side + 2} px refused: "
                                         "the 48 MiB rule (bytes + 1 mask byte per band) holds")
    return Check("size limit", False, f"{side + 2} px was served: the server allows more than senclr plans with")


def run_checks(project: str | None, credentials: str, api_url: str | None, out: str | None = None,
               batch_timeout_s: float = 900.0, poll_s: float = 10.0,
               say: Callable[[str], None] = print) -> list[Check]:
    """Every check, in order; a failed access check stops the others (they could only fail too)."""
    try:
        session.connect(project, credentials, api_url)
        session.check_access()
    except Exception as e:  # noqa: BLE001 - reported in the table; the message names the fix
        return [Check("access", False, str(e))]
    import ee

    ee.data.setWorkloadTag(WORKLOAD_TAG)
    checks = [Check("access", True, f"project {project or '(from the credentials)'} can compute")]
    steps = (("grid", check_grid), ("batch grid", lambda: check_batch(out, batch_timeout_s, poll_s, say)),
             ("size limit", check_size_limit))
    for name, check in steps:
        try:
            checks.append(check())
        except Exception as e:  # noqa: BLE001 - one broken check must not hide the others
            checks.append(Check(name, False, f"{type(e).__name__}: {e}"))
    return checks


def table(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    return "\n".join(f"{c.state}  {c.name:<{width}}  {c.detail}" for c in checks)
