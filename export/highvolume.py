"""High-volume mode: one ``computePixels`` request per pair, from a Beam pipeline, into --out.

Each planned pair not yet in the archive becomes one request for its stacked image (S1, S2,
cs_cdf) on the patch grid, answered as NPY and stored as it comes (the raw archive's .npy), then
the pair's .json. Earth Engine's client retries 429/5xx itself (5 times, with backoff); a pair that
still fails lands in the ledger with its reason: none is dropped silently.

Concurrency: requests run on a thread pool of ``threads`` per worker process, so the DirectRunner
(one process by default) makes at most ``--max-concurrent`` requests at once. On Dataflow the
ceiling is workers x threads: ``threads_per_worker`` divides --max-concurrent by
``--max_num_workers``.
"""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions, WorkerOptions
from tqdm import tqdm

from senclr import raw_archive, storage
from senclr.bands import S1_BANDS, s2_collection

from . import ee_query, ee_session, ledger
from .plan import pair_meta, pairing_from_json

NAMESPACE = "senclr-export"


def threads_per_worker(max_concurrent: int, beam_args: list[str]) -> int:
    workers = PipelineOptions(beam_args).view_as(WorkerOptions).max_num_workers or 1
    return max(1, max_concurrent // workers)


def check_npy(data: bytes, size: int, s2_level: str) -> None:
    """ValueError unless ``data`` is the structured [size, size] array of one pair."""
    arr = np.load(io.BytesIO(data), allow_pickle=False)
    want = [*S1_BANDS, *s2_collection(s2_level).band_names, raw_archive.CLOUD_FIELD]
    if arr.dtype.names is None or list(arr.dtype.names) != want or arr.shape != (size, size):
        raise ValueError(f"unexpected response: {arr.dtype.names} {arr.shape}, wanted {want} ({size}, {size})")


class FetchPairsFn(beam.DoFn):
    """A batch of planned pairs -> their pair ids when stored; failures go to the ledger."""

    def __init__(self, connection: dict, out: str, s2_level: str, mode: str, threads: int, total: int, progress: bool):
        self.connection, self.out, self.s2_level, self.mode, self.threads = connection, out, s2_level, mode, threads
        self.total, self.progress = total, progress

    def setup(self):
        # Each worker process needs its own Earth Engine session (credentials never pickled).
        ee_session.connect(**self.connection)
        self.bar = tqdm(total=self.total, desc="computePixels", unit="pair", disable=not self.progress)

    def teardown(self):
        self.bar.close()

    def _fetch(self, entry: dict) -> tuple[str, str | None]:
        import ee

        pairing = pairing_from_json(entry)
        try:
            data = ee.data.computePixels(ee_query.pixels_request(pairing, self.s2_level))
            check_npy(data, pairing.patch.size_px, self.s2_level)
        except Exception as e:  # noqa: BLE001 - after EE's own retries every failure is recorded
            return entry["pair_id"], f"{type(e).__name__}: {e}"[:500]
        npy_uri, json_uri = raw_archive.pair_uris(self.out, entry["pair_id"])
        storage.write_bytes(npy_uri, data)
        storage.write_text(json_uri, json.dumps(pair_meta(entry, self.mode).to_json(), sort_keys=True, indent=1))
        return entry["pair_id"], None

    def process(self, batch):
        with ThreadPoolExecutor(self.threads) as pool:
            for pair_id, error in pool.map(self._fetch, batch):
                self.bar.update(1)
                if error:
                    Metrics.counter(NAMESPACE, "failed").inc()
                    ledger.mark_failed(self.out, pair_id, error)
                else:
                    Metrics.counter(NAMESPACE, "done").inc()
                    yield pair_id


def run(params, plan: dict, beam_args: list[str], progress: bool = True) -> dict:
    """Fetch every planned pair not yet done; returns the ledger counts afterwards."""
    done = ledger.done_ids(params.out)
    todo = [p for p in plan["pairs"] if p["pair_id"] not in done]
    threads = threads_per_worker(params.max_concurrent, beam_args)
    connection = {"project": params.project, "credentials": params.ee_credentials, "api_url": params.ee_api_url}
    if todo:
        with beam.Pipeline(options=PipelineOptions(beam_args)) as p:
            _ = (
                p
                | "Planned" >> beam.Create(todo)
                | "Batch" >> beam.BatchElements(min_batch_size=threads, max_batch_size=4 * threads)
                | "ComputePixels" >> beam.ParDo(
                    FetchPairsFn(connection, params.out, params.s2_level, params.mode, threads, len(todo), progress))
            )
    return ledger.counts(params.out, plan)
