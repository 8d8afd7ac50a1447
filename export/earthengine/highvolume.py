"""High-volume mode: one ``computePixels`` request per pair, from a Beam pipeline, into --out.

Each planned pair not yet in the archive becomes one request for its stacked image (S1, S2,
cs_cdf) on the patch grid, answered as NPY and stored as it comes (the raw archive's .npy), then
the pair's .json. Earth Engine's client retries 429/5xx itself (5 times, with backoff); a pair that
still fails lands in the ledger with its reason: none is dropped silently.

Concurrency: every worker process holds one semaphore of ``--max-concurrent / processes`` slots,
shared by all the DoFn instances and threads in it (and one pool of twice as many request
threads), where ``processes`` is what the runner can start (``worker_processes``): 1 for the
in-process and multi-threaded DirectRunner, ``--direct_num_workers`` for the multi-process one,
``--max_num_workers`` on Dataflow (required there, with one SDK process per VM). So the whole job
never has more than --max-concurrent requests in flight. The planned ids are reshuffled over the
processes only when there are several.
"""

from __future__ import annotations

import gc
import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from tqdm import tqdm

from senclr import beam_flags, raw_archive, storage
from senclr.beam_lists import listed
from senclr.errors import InputError

from . import query, session, ledger, limits
from .plan import pair_meta, pairing_from_json

NAMESPACE = "senclr-export"


_SLOTS: dict[int, threading.BoundedSemaphore] = {}
_SLOTS_LOCK = threading.Lock()
SINGLE_SDK_PROCESS = "--experiments=no_use_multiple_sdk_containers"
WORKER_NEEDS = ("earthengine-api",)  # beyond senclr's core and Beam: the computePixels client


def _slots(n: int) -> threading.BoundedSemaphore:
    """The process-wide request slots: shared by every DoFn instance and thread of this process."""
    with _SLOTS_LOCK:
        return _SLOTS.setdefault(n, threading.BoundedSemaphore(n))


def worker_processes(beam_args: list[str]) -> int:
    """How many worker processes the runner may start (each gets its share of the slots)."""
    workers = beam_flags.worker_processes(beam_args)
    if not workers:
        runner = PipelineOptions(beam_args).view_as(StandardOptions).runner
        raise InputError(f"with --runner {runner}, pass --max_num_workers so the requests of all workers "
                         "together stay within --max-concurrent")
    return workers


def runner_flags(beam_args: list[str]) -> list[str]:
    """Dataflow runs one SDK process per VM when asked: then worker_processes counts them right."""
    runner = PipelineOptions(beam_args).view_as(StandardOptions).runner or ""
    if "Dataflow" in runner and SINGLE_SDK_PROCESS not in beam_args:
        return [*beam_args, SINGLE_SDK_PROCESS]
    return list(beam_args)


def check_npy(data: bytes, size: int, s2_level: str, labels: tuple[str, ...] = ()) -> None:
    """ValueError unless ``data`` is the structured [size, size] array of one pair: its bands by
    name, in the order asked, each of the type asked. A well-formed answer of the wrong image must
    not be stored as a finished pair."""
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"unexpected response: not an NPY array ({len(data)} bytes: {e})") from None
    want = limits.pair_bands(s2_level, labels)
    got = [(n, arr.dtype[n].name) for n in arr.dtype.names or ()]
    if got != [(b, np.dtype(t).name) for b, t in want] or arr.shape != (size, size):
        raise ValueError(f"unexpected response: bands {got or arr.dtype.str} of shape {arr.shape}, "
                         f"wanted {want} of shape ({size}, {size})")


_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool(n: int) -> ThreadPoolExecutor:
    """The process-wide request threads: twice the process's ``n`` slots, so while some threads
    build a request or store an answer (holding no slot), others wait on the slots and keep all
    ``n`` requests in flight. The slots, not the threads, cap the requests."""
    with _SLOTS_LOCK:
        return _POOLS.setdefault(n, ThreadPoolExecutor(2 * n, thread_name_prefix="computePixels"))


class FetchPairsFn(beam.DoFn):
    """A planned pair -> its request, started at once on the process's request threads.

    ``process`` only submits: every element of a bundle is queued on the shared pool, so the
    process keeps its ``slots`` requests in flight continuously, with no barrier between groups
    of pairs (a group waiting for its slowest request cost a whole extra round trip). The bundle
    finishes when its requests have; each stored pair's id is emitted then, failures go to the
    ledger.

    ``setup`` freezes the heap it finds (``gc.freeze``: Beam, the ee client and its discovery
    documents, ~230k objects) until ``teardown``. Otherwise each full collection of the cyclic
    garbage collector walked them all, 2-3 times per 1000 pairs, and stopped every request
    thread for 110-270 ms while answers waited and slots stayed held (docs/performance.md).
    Only the collector stops looking at them; objects are still freed when their references go.
    With several instances in one process the first ``teardown`` ends the freeze for all, which
    happens as the pipeline ends.
    """

    def __init__(self, connection: dict, out: str, s2_level: str, mode: str, slots: int, total: int, progress: bool,
                 workload_tag: str = "senclr-export", labels: tuple[str, ...] = (), entries_uri: str = ""):
        self.connection, self.out, self.s2_level, self.mode, self.slots = connection, out, s2_level, mode, slots
        self.total, self.progress, self.workload_tag, self.labels = total, progress, workload_tag, tuple(labels)
        self.entries_uri = entries_uri

    def setup(self):
        import ee

        # Each worker process needs its own Earth Engine session (credentials never pickled).
        session.connect(**self.connection)
        session.size_pool(self.slots)
        ee.data.setWorkloadTag(self.workload_tag)
        self.entries = read_entries(self.entries_uri)
        self.bar = tqdm(total=self.total, desc="computePixels", unit="pair", disable=not self.progress)
        gc.freeze()

    def teardown(self):
        self.bar.close()
        gc.unfreeze()

    def start_bundle(self):
        self.futures = []

    def _fetch(self, entry: dict) -> tuple[str, str | None]:
        import ee

        pairing = pairing_from_json(entry)
        try:
            request = query.pixels_request(pairing, self.s2_level, self.labels)  # client work outside the slot
            with _slots(self.slots):
                data = ee.data.computePixels(request)
            check_npy(data, pairing.patch.size_px, self.s2_level, self.labels)
            npy_uri, json_uri = raw_archive.pair_uris(self.out, entry["pair_id"])
            storage.write_bytes(npy_uri, data)
            storage.write_text(json_uri, json.dumps(pair_meta(entry, self.mode).to_json(), sort_keys=True, indent=1))
        except Exception as e:  # noqa: BLE001 - after EE's own retries every failure is recorded
            return entry["pair_id"], f"{type(e).__name__}: {e}"[:500]
        return entry["pair_id"], None

    def process(self, pair_id):
        entry = json.loads(self.entries[pair_id])
        self.futures.append(_pool(self.slots).submit(self._fetch, entry))

    def finish_bundle(self):
        from apache_beam.transforms.window import GlobalWindow
        from apache_beam.utils.windowed_value import WindowedValue

        for future in self.futures:
            pair_id, error = future.result()
            self.bar.update(1)
            if error:
                Metrics.counter(NAMESPACE, "failed").inc()
                ledger.mark_failed(self.out, pair_id, error)
            else:
                Metrics.counter(NAMESPACE, "done").inc()
                yield WindowedValue(pair_id, 0, [GlobalWindow()])
        self.futures = []


CREATE_LIMIT = 50_000  # pair ids (16 hex digits) embedded in the job graph before they go through a file
ENTRIES, IDS = "todo.jsonl", "todo_ids.txt"


def write_entries(uri: str, todo: list[dict]) -> None:
    """The plan entries to fetch, one ``<pair_id>\t<json>`` line each, for the workers to read."""
    storage.write_text(uri, "".join(f"{p['pair_id']}\t{json.dumps(p, sort_keys=True)}\n" for p in todo))


def read_entries(uri: str) -> dict[str, str]:
    """{pair id: its entry's JSON}, parsed only when the pair is fetched (a plan's dicts take 3x the memory)."""
    return dict(line.split("\t", 1) for line in storage.read_text(uri).splitlines() if line)


def run(params, plan: dict, beam_args: list[str], progress: bool = True) -> dict:
    """Fetch every planned pair not yet done; returns the ledger counts afterwards."""
    done = ledger.done_ids(params.out)
    todo = [p for p in plan["pairs"] if p["pair_id"] not in done]
    processes = worker_processes(beam_args)
    slots = max(1, params.max_concurrent // processes)
    connection = {"project": params.project, "credentials": params.ee_credentials, "api_url": params.ee_api_url}
    if todo:
        # Only ids go through the pipeline: Create embeds its items in the job graph, and 1000
        # whole entries cost the pipeline's start ~0.8 s more than their ids (Beam pickles,
        # encodes and type-infers every item). Workers read the entries from the ledger.
        entries = storage.join(params.out, ledger.LEDGER, ENTRIES)
        write_entries(entries, todo)
        with (beam_flags.worker_requirements(runner_flags(beam_args), WORKER_NEEDS) as flags,
              beam_flags.pipeline(flags) as p):
            _ = (
                p
                | "Planned" >> listed([e["pair_id"] for e in todo], storage.join(params.out, ledger.LEDGER, IDS),
                                      CREATE_LIMIT, str, str, processes)
                | "ComputePixels" >> beam.ParDo(
                    FetchPairsFn(connection, params.out, params.s2_level, params.mode, slots, len(todo), progress,
                                 params.workload_tag, params.labels, entries))
            )
    return ledger.counts(params.out, plan)
