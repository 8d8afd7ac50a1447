"""``senclr export doctor``: the live self-check to run once before a large export.

Each check asks the real service something whose answer senclr can predict exactly:

1. ``access``: credentials, and the project registered for Earth Engine (one trivial compute).
2. ``grid``: computePixels of ``ee.Image.pixelCoordinates`` on a patch grid as ``run`` cuts it
   (``Patch.transform``, north up). Every pixel must hold its own centre's coordinates: a row
   flipped north-south, or the grid shifted by any fraction of a pixel, fails it.
3. ``size limit``: a request of exactly the largest side senclr allows for its band layout is
   answered, and the next even side is refused, so the byte rule senclr plans with (pixels x
   bands x (bytes + 1 mask byte) <= 48 MiB) is the server's.

The batch-mode counterpart of check 2 (a tiny export task of the same grid) is not here yet.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from . import ee_session, limits
from .grid import UtmGrid
from .ee_query import affine_transform

GRID_CRS, GRID_CELL, GRID_SIZE, GRID_SCALE = "EPSG:32632", (7237, 62290), 8, 10.0  # a patch near 10°E, 45°N
PROBE_BANDS = 16  # float32 bands of the size probe: as many as an L1C pair, at the widest dtype


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _pixels(image, patch, size: int | None = None) -> np.ndarray:
    import ee

    size = size or patch.size_px
    data = ee.data.computePixels({"expression": image, "fileFormat": "NPY",
                                  "grid": {"dimensions": {"width": size, "height": size},
                                           "affineTransform": affine_transform(patch), "crsCode": patch.crs}})
    return np.load(io.BytesIO(data), allow_pickle=False)


def check_grid() -> Check:
    """Pixel (i, j) of a north-up patch grid holds x0 + (j + 0.5) s, y0 - (i + 0.5) s."""
    import ee

    patch = UtmGrid(GRID_CRS, GRID_SIZE, GRID_SCALE).patch(*GRID_CELL, polygon=None)
    got = _pixels(ee.Image.pixelCoordinates(ee.Projection(patch.crs)), patch)
    j, i = np.meshgrid(np.arange(patch.size_px), np.arange(patch.size_px))
    want_x, want_y = patch.x0 + (j + 0.5) * patch.scale, patch.y0 - (i + 0.5) * patch.scale
    if got.shape != (patch.size_px,) * 2 or set(got.dtype.names or ()) != {"x", "y"}:
        return Check("grid", False, f"unexpected answer {got.dtype.names} {got.shape}")
    dx, dy = np.abs(got["x"] - want_x).max(), np.abs(got["y"] - want_y).max()
    if dx > 1e-3 or dy > 1e-3:
        flipped = np.abs(got["y"][::-1] - want_y).max() <= 1e-3
        why = "rows come north-south flipped" if flipped else f"off by up to {dx:.3f} m east, {dy:.3f} m north"
        return Check("grid", False, f"{why} on {patch.crs} at ({patch.x0:.0f}, {patch.y0:.0f}): patches would be misplaced")
    return Check("grid", True, f"{patch.size_px}x{patch.size_px} px at {patch.scale:g} m on {patch.crs}: every pixel "
                               "at its centre, north up")


def check_size_limit() -> Check:
    """The largest side senclr allows for PROBE_BANDS float32 bands is served; the next is refused."""
    import ee

    side = limits.largest_side(["float32"] * PROBE_BANDS)
    patch = UtmGrid(GRID_CRS, GRID_SIZE, GRID_SCALE).patch(*GRID_CELL, polygon=None)
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


def run_checks(project: str | None, credentials: str, api_url: str | None) -> list[Check]:
    """Every check, in order; a failed access check stops the others (they could only fail too)."""
    try:
        ee_session.connect(project, credentials, api_url)
        ee_session.check_access()
    except Exception as e:  # noqa: BLE001 - reported in the table; the message names the fix
        return [Check("access", False, str(e))]
    checks = [Check("access", True, f"project {project or '(from the credentials)'} can compute")]
    for check in (check_grid, check_size_limit):
        try:
            checks.append(check())
        except Exception as e:  # noqa: BLE001 - one broken check must not hide the others
            checks.append(Check(check.__name__.removeprefix("check_").replace("_", " "), False,
                                f"{type(e).__name__}: {e}"))
    return checks


def table(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    return "\n".join(f"{'PASS' if c.ok else 'FAIL'}  {c.name:<{width}}  {c.detail}" for c in checks)
