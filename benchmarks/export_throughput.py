"""High-volume export: how much of the concurrency quota the requests really use.

    .venv/bin/python benchmarks/export_throughput.py [--pairs 1000] [--latency 0.5 2] [--max-concurrent 40] [--quick]

The real ``ee`` client and the real Beam pipeline (``export.highvolume.run``, in-process
DirectRunner) fetch ``--pairs`` planned 16x16 pairs from the local fake Earth Engine server
(``tests/fake_ee.py``, run in its own process as the real server is not in the client's),
which answers every computePixels ``L`` seconds after it arrived (its own parsing and encoding
included, as in a real service's latency). The time counts from the pipeline's start
(its set-up included) to the last pair stored. With
``--max-concurrent`` C requests in flight all the time, the ideal is C/L pairs a second, so:

- ``ratio throughput/ideal (L=...)``: pairs/s measured over C/L. Target >= 0.9 at L = 0.5 s and 2 s.
- ``ratio served/ideal``: the same from the first request's arrival to the last answer, i.e.
  without Beam's start (~0.3 s) and end (~0.2 s): what a long export approaches.
- ``peak in flight``: the most concurrent computePixels the server saw; must never pass C.

Every pair must be stored exactly once (checked: the archive holds each planned pair once).
Only the ratios are meant to be compared; ``--quick`` checks the script in seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _plan(n: int) -> dict:
    """``n`` planned pairs on one UTM grid (scenes are names only: the fake does not look)."""
    from senclr.export.earthengine.grid import UtmGrid
    from senclr.export.earthengine.pairing import Pairing, Scene
    from senclr.export.earthengine.plan import pairing_json
    from senclr.pair import make_pair_id

    grid = UtmGrid("EPSG:32632", 16, 10.0)
    t = datetime(2021, 6, 10, tzinfo=timezone.utc)
    s2, s1 = Scene("S2_scene", t, None, crs="EPSG:32632"), Scene("S1_scene", t + timedelta(hours=3), None, "ASCENDING", 117)
    pairs = []
    for k in range(n):
        patch = grid.patch(3000 + k % 100, 31000 + k // 100, polygon=None)
        pairs.append(pairing_json(Pairing(patch, s2, s1, 3.0, make_pair_id(patch.lon, patch.lat, s1.id, s2.id + str(k)))))
    return {"pairs": pairs}


def _pixels(body):
    """The computePixels handler: zeros of the request's size, in every band of an L1C pair."""
    import numpy as np

    from senclr.bands import S1_BANDS, s2_collection

    names = [*S1_BANDS, *s2_collection("l1c").band_names, "cs_cdf"]
    size = body["grid"]["dimensions"]["width"]
    return np.zeros((size, size), [(b, "<f4" if b in ("VV", "VH", "cs_cdf") else "<u2") for b in names])


def _after(latency: float, answer, seen: list):
    """``FakeEE.answer`` made to answer each computePixels ``latency`` after the request arrived,
    as a service whose latency is L does: the fake's own parsing and encoding (done while other
    requests hold the GIL) fall inside L instead of adding to it. ``seen`` gets [first arrival,
    last answer] (wall clock)."""

    def timed(req, op_name):
        if req.endpoint != "image:computePixels":
            return answer(req, op_name)
        if not seen:
            seen.append(time.time() - (time.monotonic() - req.received))
        out = answer(req, op_name)
        time.sleep(max(0.0, req.received + latency - time.monotonic()))
        seen[1:] = [time.time()]
        return out

    return timed


def _serve(latency: float, conn) -> None:
    """The fake server in its own process, as the real one is not in the client's: it answers
    after ``latency`` and reports its peak concurrency when asked."""
    sys.path.insert(0, ROOT)
    from tests.fake_ee import FakeEE

    server, seen = FakeEE().start(), []
    server.compute_pixels = _pixels
    server.answer = _after(latency, server.answer, seen)
    conn.send((server.url, server.project))
    conn.recv()  # the client is done
    conn.send((server.max_in_flight["image:computePixels"], seen[1] - seen[0]))
    server.stop()


def measure(n: int, latency: float, concurrent: int) -> tuple[float, int, float]:
    """(pairs/s, peak in flight, pairs/s from the first request's arrival to the last answer) of one
    high-volume run against a fake answering after ``latency``."""
    import multiprocessing

    import ee

    from senclr import raw_archive
    from senclr.export.earthengine import highvolume
    from senclr.export.earthengine.params import ExportParams

    ours, theirs = multiprocessing.Pipe()
    child = multiprocessing.get_context("spawn").Process(target=_serve, args=(latency, theirs), daemon=True)
    child.start()
    url, project = ours.recv()
    ee.deprecation._FetchDataCatalogStac = dict  # no internet call inside ee.Initialize
    try:
        with tempfile.TemporaryDirectory(prefix="senclr-bench-") as out:
            params = ExportParams(region=None, region_text="", region_km2=0, start=None, end=None, out=out,
                                  patch_size=16, project=project, max_concurrent=concurrent,
                                  mode="highvolume", ee_api_url=url, ee_credentials="none")
            plan = _plan(n)
            t0 = time.perf_counter()
            counts = highvolume.run(params, plan, [], progress=False)
            seconds = time.perf_counter() - t0
            stored = [u.rsplit("/", 1)[-1] for u in raw_archive.list_pairs(out)]
            if counts["done"] != n or len(stored) != len(set(stored)) or len(stored) != n:
                raise SystemExit(f"not every pair stored exactly once: {counts}, {len(stored)} files")
        ours.send("done")
        peak, served = ours.recv()
        return n / seconds, peak, n / served
    finally:
        ee.Reset()
        child.join(timeout=10)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pairs", type=int, default=1000)
    p.add_argument("--latency", type=float, nargs="+", default=[0.5, 2.0])
    p.add_argument("--max-concurrent", type=int, default=40)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    if a.quick:
        a.pairs, a.latency, a.max_concurrent = 40, [0.2], 8
    for latency in a.latency:
        rate, peak, steady = measure(a.pairs, latency, a.max_concurrent)
        ideal = a.max_concurrent / latency
        print(f"L={latency:g} s: {rate:.1f} pairs/s of an ideal {ideal:.1f} ({a.pairs} pairs, --max-concurrent "
              f"{a.max_concurrent}); peak in flight {peak}; {steady:.1f} pairs/s while requests flowed")
        print(f"ratio throughput/ideal (L={latency:g}): {rate / ideal:.3f}")
        print(f"ratio served/ideal, pipeline start and end left out (L={latency:g}): {steady / ideal:.3f}")
        if peak > a.max_concurrent:
            raise SystemExit(f"peak in flight {peak} exceeds --max-concurrent {a.max_concurrent}")


if __name__ == "__main__":
    main()
