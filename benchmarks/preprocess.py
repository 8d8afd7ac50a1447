"""Pairs/s per core and peak memory of the Beam preprocessing pipeline against a bare numpy loop.

    python benchmarks/preprocess.py [--format archive|table|chips] [--pairs 1000 10000]
                                    [--patch-size 32] [--quick] [--repeats 1]

Writes the same synthetic pairs, at a SMALL and a LARGE size, in the input format chosen
(``preprocess_inputs``: a raw archive, a batch export's table TFRecords, or GeoTIFF chips of 4 x 4
patches; written apart, not part of any ratio), then runs, each in a fresh subprocess so that its
peak memory is its own:

- ``bare``: one process, a plain loop doing the pipeline's work: list the input's units, read
  them (``sources.read_unit``), ``filters.check`` with the pipeline's FilterConfig, the split of
  each kept pair by place, ``schema.encode_record``, TFRecord framing and writing of the same
  shards, per-band statistics with ``BandStatsFn``'s methods, and the rejects file;
- ``beam``: ``senclr.pipeline.preprocess.preprocess`` on the DirectRunner, default (in-process)
  mode: one worker process;
- ``bare-x2``: two bare loops started together, each on every pair: what this machine gives two
  busy processes, against which the multi-process run is also compared;
- ``beam-mp``: the same with ``--direct_running_mode=multi_processing --direct_num_workers=2``:
  two worker processes (plus the runner's own process).

The bare loop's shards are checked to be byte-identical to the pipeline's (same work, same output).

Throughput is pairs read per second divided by the worker processes used, reported two ways:
"including start-up" (LARGE / wall time of the whole call: pipeline construction, runner and
worker start-up, manifest) and "steady state" (the slope between the two sizes,
(LARGE - SMALL) / (t_LARGE - t_SMALL), which cancels one-off start-up). The targets (Beam
per core >= 0.5 x bare loop; issue 11: multi-process >= 0.85) are judged on the steady state;
pairs per CPU-second (all processes of a run, from ``wait4``) are printed beside it. Peak memory is
the child's own peak RSS (its ``VmHWM``: ``wait4``'s ``ru_maxrss`` would count the parent's RSS
at the fork, which Linux carries across ``exec``); for beam-mp, whose workers are separate
processes, the sum of the RSS of the whole process tree, sampled every 0.1 s, is printed too.
Target: peak at LARGE <= 1.2 x peak at SMALL, for every format.

Wall times vary with whatever else runs on the machine; only the ratios of one run are meant to
be compared, and nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from preprocess_inputs import FORMATS, make as make_input  # noqa: E402

MODES = {
    "bare": (1, None),
    "bare-x2": (2, None),  # two bare loops at once, each on all pairs: what the machine gives two processes
    "beam": (1, ["--direct_running_mode=in_memory"]),  # explicit: large inputs default to multi-processing
    "beam-mp": (2, ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]),
}
COPIES = {"bare-x2": 2}  # runs that do the whole work more than once
TARGETS = {"beam": 0.5, "beam-mp": 0.85, "bare-x2": None}  # per core, steady state, against the bare loop
QUICK_PAIRS = (48, 144)  # --quick: 3 and 9 chips of 4 x 4 patches
SPLIT, CELL_DEG, SHARD_MB, SEED = "0.8,0.1,0.1", 0.25, float(os.environ.get("BENCH_SHARD_MB", 100.0)), 0


# ---------------------------------------------------------------------------------------------
# child side: one run of one mode on one archive, reporting JSON on the last line of stdout


def _vm_hwm_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def bare_loop(given: str, out: str, patch_size: int | None) -> dict:
    """The pipeline's work in one plain loop: same config, same split, same shards, same stats.
    (The first copy of a pair id in unit order is kept: the benchmark's inputs hold no duplicates.)"""
    from senclr import raw_ee_table, storage, tfrecord
    from senclr.casualty import Casualty
    from senclr.pipeline import filters, sources, split
    from senclr.pipeline.preprocess import DEFAULT_CS_THRESHOLD, DEFAULT_MIN_CLEAR, shards_per_split
    from senclr.pipeline.stats import BandStatsFn
    from senclr.pipeline.transforms import REJECTS_FILE
    from senclr.schema import encode_record

    inputs = sources.resolve(given, patch_size)
    s1_bands, s2_bands = ("VV", "VH"), inputs.s2_bands
    cfg = filters.FilterConfig(tuple(s2_bands), inputs.patch_size, inputs.recorded("min_clear") or DEFAULT_MIN_CLEAR,
                               inputs.recorded("cs_threshold") or DEFAULT_CS_THRESHOLD, 0.05)
    fractions = split.parse_fractions(SPLIT)
    num_shards = shards_per_split(inputs.expected_pairs, fractions, inputs.patch_size or 64, len(s2_bands), SHARD_MB,
                                  inputs.labels)
    stats_fn = BandStatsFn(tuple(s1_bands), tuple(s2_bands))
    acc = stats_fn.create_accumulator()
    shards: dict[tuple[str, int], list[tuple[str, bytes]]] = {}
    rejects, seen, read = [], {}, 0
    storage.makedirs(out)
    plans: dict = {}

    def plan(uri):  # loaded once, as ReadUnitFn does
        if uri not in plans:
            plans[uri] = raw_ee_table.read_plan(uri)
        return plans[uri]

    def reject(pair_id, reason, detail, source):
        rejects.append({"pair_id": pair_id, "reason": reason, "detail": detail, "source": source})

    for unit in inputs.units:
        try:
            for pair in sources.read_unit(unit, inputs.patch_size if unit.kind == sources.CHIPS else None, plan):
                read += 1
                if isinstance(pair, Casualty):
                    reject(pair.pair_id, pair.reason, pair.detail, pair.source)
                    continue
                pair.labels = {n: a for n, a in pair.labels.items() if n in inputs.labels}
                verdict = filters.check(pair, cfg)
                if verdict:
                    reject(pair.pair_id, *verdict, pair.origin)
                    continue
                if pair.pair_id in seen:
                    reject(pair.pair_id, "duplicate", f"same pair id as {seen[pair.pair_id]}", pair.origin)
                    continue
                seen[pair.pair_id] = pair.origin
                name = split.split_of(pair.meta.lon, pair.meta.lat, CELL_DEG, fractions, SEED)
                shard = zlib.crc32(pair.pair_id.encode()) % num_shards[name]
                shards.setdefault((name, shard), []).append((pair.pair_id, encode_record(pair, name)))
                stats_fn.add_input(acc, pair)
        except Exception as e:  # noqa: BLE001 - as ReadUnitFn
            read += 1
            reject("", "unreadable", f"{type(e).__name__}: {e}", unit.uri)
    written = []
    for (name, shard), records in sorted(shards.items()):
        data = tfrecord.encode_file(r for _, r in sorted(records))
        path = f"{name}-{shard:05d}.tfrecord"
        storage.write_bytes(storage.join(out, path), data)
        written.append({"path": path, "split": name, "records": len(records), "sha256": hashlib.sha256(data).hexdigest()})
    stats = stats_fn.extract_output(stats_fn.merge_accumulators([acc]))
    rejects.sort(key=lambda r: (r["pair_id"], r["reason"], r["source"]))
    storage.write_text(storage.join(out, REJECTS_FILE), "".join(json.dumps(r, sort_keys=True) + "\n" for r in rejects))
    summary = {"counts": {"read": read, "kept": len(seen)}, "shards": written, "statistics": stats}
    storage.write_text(storage.join(out, "summary.json"), json.dumps(summary, sort_keys=True))
    return summary


def bare_twice(raw: str, out: str, patch: str) -> None:
    """Two bare loops started together, each on every pair: their JSON, with the longer wall."""
    procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child", "bare", raw, f"{out}-{i}", patch],
                              stdout=subprocess.PIPE, text=True) for i in range(2)]
    runs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit("a bare loop of bare-x2 failed")
    r = max(runs, key=lambda x: x["wall_s"])
    print(json.dumps({**r, "mode": "bare-x2", "vm_hwm_kb": max(x["vm_hwm_kb"] for x in runs)}))


def child(mode: str, raw: str, out: str, patch: str) -> None:
    if mode == "bare-x2":
        bare_twice(raw, out, patch)
        return
    t0 = time.perf_counter()
    patch_size = int(patch) or None  # chips are cut at it; the other formats know their own
    if mode == "bare":
        import senclr.pipeline.stats  # noqa: F401 - imports Beam (BandStatsFn is a CombineFn), as the pipeline does
        run = lambda: bare_loop(raw, out, patch_size)  # noqa: E731
    else:
        from senclr.pipeline.preprocess import preprocess

        run = lambda: preprocess(raw, out, split=SPLIT, cell_deg=CELL_DEG, shard_mb=SHARD_MB,  # noqa: E731
                                 seed=SEED, beam_args=MODES[mode][1], patch_size=patch_size)
    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    m = run()
    wall = time.perf_counter() - t0
    shards = sorted((s["path"].rsplit("/", 1)[-1], s["records"], s["sha256"]) for s in m["shards"])  # without the build folder
    print(json.dumps({"mode": mode, "import_s": t_import, "wall_s": wall, "read": m["counts"]["read"],
                      "kept": m["counts"]["kept"], "shards": shards, "vm_hwm_kb": _vm_hwm_kb()}))


# ---------------------------------------------------------------------------------------------
# parent side


def _tree_rss_kb(root: int) -> int:
    """Sum of VmRSS over ``root`` and its descendants (from /proc; 0 for vanished processes)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, ()))
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
        except OSError:
            pass
    return total


def run_child(mode: str, raw: str, out: str, log: str, patch_size: int = 0) -> dict:
    """One fresh subprocess; adds its CPU time, peak RSS and sampled peak process-tree RSS."""
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child", mode, raw, out, str(patch_size)],
                                stdout=subprocess.PIPE, stderr=err, text=True)
        peak_tree, done = [0], threading.Event()

        def sample():
            while not done.wait(0.1):
                peak_tree[0] = max(peak_tree[0], _tree_rss_kb(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        stdout = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
    if proc.returncode != 0:
        with open(log) as f:
            tail = f.read()[-3000:]
        raise SystemExit(f"{mode} on {raw} failed (exit {proc.returncode}):\n{tail}")
    r = json.loads(stdout.strip().splitlines()[-1])
    r["cpu_s"] = usage.ru_utime + usage.ru_stime  # the child and every descendant it waited for
    r["maxrss_kb"] = r["vm_hwm_kb"]  # not ru_maxrss: it starts from the parent's RSS at the fork
    r["tree_kb"] = max(peak_tree[0], r["vm_hwm_kb"])
    return r


def _fmt_ratio(x: float | None, target: str, ok: bool | None) -> str:
    if x is None:
        return f"   n/a  ({target}; sizes too close or timings too noisy for a slope)"
    verdict = "met" if ok else "NOT met"
    return f"{x:6.2f}  ({target}: {verdict})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, nargs=2, metavar=("SMALL", "LARGE"), default=None,
                    help="the two archive sizes (default 1000 10000; 48 144 with --quick)")
    ap.add_argument("--patch-size", type=int, default=32)
    ap.add_argument("--quick", action="store_true", help="small sizes (48 and 144) and no bare-x2: a smoke run, ratios not meaningful")
    ap.add_argument("--repeats", type=int, default=1, help="runs of each mode and size; the fastest counts")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep the archives and outputs")
    ap.add_argument("--format", choices=FORMATS, default="archive",
                    help="the input format: a raw archive, a batch export's table TFRecords, or GeoTIFF chips")
    ap.add_argument("--child", nargs=4, metavar=("MODE", "INPUT", "OUT", "PATCH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    small, large = args.pairs or (QUICK_PAIRS if args.quick else (1000, 10000))
    if not 0 < small < large:
        ap.error("--pairs SMALL LARGE needs 0 < SMALL < LARGE")
    modes = [m for m in MODES if not (args.quick and m in COPIES)]  # a smoke run needs no machine reference

    work = args.keep or tempfile.mkdtemp(prefix="senclr-bench-")
    os.makedirs(work, exist_ok=True)
    chips_patch = args.patch_size if args.format == "chips" else 0
    try:
        raws = {}
        for n in (small, large):
            raws[n] = os.path.join(work, f"{args.format}-{n}-{args.patch_size}")
            done = os.path.join(raws[n], ".written")
            if not os.path.exists(done):
                t0 = time.perf_counter()
                shutil.rmtree(raws[n], ignore_errors=True)
                make_input(args.format, raws[n], n, args.patch_size)
                open(done, "w").close()
                print(f"synthetic {args.format}: {n} pairs of {args.patch_size}x{args.patch_size} L1C in "
                      f"{time.perf_counter() - t0:.1f} s (not part of any ratio)", flush=True)
        results: dict[tuple[str, int], dict] = {}
        for rep in range(args.repeats):
            for n in (small, large):
                for mode in modes:
                    out = os.path.join(work, f"out-{mode}-{n}")
                    for o in (out, out + "-0", out + "-1"):
                        shutil.rmtree(o, ignore_errors=True)
                    r = run_child(mode, raws[n], out, os.path.join(work, f"log-{mode}-{n}.txt"), chips_patch)
                    if (mode, n) not in results or r["wall_s"] < results[(mode, n)]["wall_s"]:
                        results[(mode, n)] = r
                    print(f"  run {rep + 1}: {mode:8s} {n:6d} pairs: {r['wall_s']:6.2f} s", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    for n in (small, large):
        ref = results[("bare", n)]["shards"]
        for mode in modes[1:]:
            if results[(mode, n)]["shards"] != ref:
                raise SystemExit(f"the bare loop and {mode} wrote different shards at {n} pairs: not the same work")
    kept = results[("bare", large)]["kept"]
    read = {n: results[("bare", n)]["read"] for n in (small, large)}  # chips: whole chips, a few more than asked
    if args.quick:
        print("\n--quick: a smoke run; at these sizes start-up and noise swamp the slopes, so its ratios mean nothing")
    print(f"\n{args.format}: {args.patch_size}x{args.patch_size} L1C pairs; kept {kept} of {read[large]} at the default filters; "
          f"bare loop shards byte-identical to every pipeline's: yes; {os.cpu_count()} cores")
    print(f"{'mode':8s} {'pairs':>6s} {'workers':>7s} {'import s':>8s} {'wall s':>7s} {'cpu s':>7s} "
          f"{'pairs/s/core':>12s} {'peak RSS MB':>11s} {'tree MB':>8s}")
    for mode in modes:
        workers = MODES[mode][0]
        for n in (small, large):
            r = results[(mode, n)]
            print(f"{mode:8s} {n:6d} {workers:7d} {r['import_s']:8.2f} {r['wall_s']:7.2f} {r['cpu_s']:7.2f} "
                  f"{read[n] * COPIES.get(mode, 1) / r['wall_s'] / workers:12.0f} {r['maxrss_kb'] / 1024:11.0f} "
                  f"{r['tree_kb'] / 1024:8.0f}")

    def rates(mode):
        workers, copies = MODES[mode][0], COPIES.get(mode, 1)
        a, b = results[(mode, small)], results[(mode, large)]
        with_startup = read[large] * copies / b["wall_s"] / workers
        dt = b["wall_s"] - a["wall_s"]
        steady = (read[large] - read[small]) * copies / dt / workers if dt > 0 else None
        dcpu = b["cpu_s"] - a["cpu_s"]
        per_cpu = (read[large] - read[small]) * copies / dcpu if dcpu > 0 else None
        return with_startup, steady, per_cpu

    bare = rates("bare")
    print("\nthroughput, pairs/s per core (per worker process):  including start-up | steady state | per CPU-second")
    for mode in modes:
        w, s, c = rates(mode)
        print(f"  {mode:8s} {w:10.0f} | {'n/a' if s is None else round(s):>10} | {'n/a' if c is None else round(c):>10}")
    for mode in modes[1:]:
        w, s, c = rates(mode)
        label, goal = f"{mode} / bare", TARGETS[mode]
        x = s / bare[1] if s and bare[1] else None
        print(f"ratio {label:15s} per core, steady state:      "
              + (_fmt_ratio(x, f"target >= {goal}", x and x >= goal) if goal else
                 (f"{x:6.2f}  (the machine's own scaling to two busy processes)" if x else "   n/a")))
        print(f"ratio {label:15s} per core, incl. start-up:    {w / bare[0]:6.2f}")
        if c and bare[2]:
            print(f"ratio {label:15s} pairs per CPU-second:        {c / bare[2]:6.2f}")
    mp, twice = rates("beam-mp")[1], rates("bare-x2")[1] if "bare-x2" in modes else None
    if mp and twice:
        print(f"ratio beam-mp / bare-x2  per core, steady state:      {mp / twice:6.2f}  (against what two bare loops get)")
    for mode in (m for m in modes if m not in COPIES):
        a, b = results[(mode, small)], results[(mode, large)]
        key = "tree_kb" if MODES[mode][0] > 1 else "maxrss_kb"
        x = b[key] / a[key]
        what = "process tree (sampled)" if key == "tree_kb" else "peak RSS"
        target = "target <= 1.2" if mode != "bare" else "reference"
        verdict = "" if mode == "bare" else (": met" if x <= 1.2 else ": NOT met")
        print(f"ratio memory {mode:8s} {large}/{small}, {what:22s} {x:6.2f}  ({target}{verdict}; "
              f"{a[key] / 1024:.0f} -> {b[key] / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
