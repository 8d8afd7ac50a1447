"""Pairs/s per core and peak memory of the Beam preprocessing pipeline against a bare numpy loop.

    python benchmarks/preprocess.py [--pairs 1000 10000] [--patch-size 32] [--quick] [--repeats 1]

Generates two synthetic raw archives (L1C, SMALL and LARGE pairs; timed apart, not part of any
ratio), then runs, each in a fresh subprocess so that its peak memory is its own:

- ``bare``: one process, a plain loop doing the pipeline's work: list pairs,
  ``raw_archive.read_pair``, ``filters.check`` with the pipeline's FilterConfig, the split of each
  kept pair by place, ``schema.encode_record``, TFRecord framing and writing of the same shards,
  per-band statistics with ``BandStatsFn``'s methods, and the rejects file;
- ``beam``: ``senclr.pipeline.preprocess.preprocess`` on the DirectRunner, default (in-process)
  mode: one worker process;
- ``beam-mp``: the same with ``--direct_running_mode=multi_processing --direct_num_workers=2``:
  two worker processes (plus the runner's own process).

The bare loop's shards are checked to be byte-identical to the pipeline's (same work, same output).

Throughput is pairs read per second divided by the worker processes used, reported two ways:
"including start-up" (LARGE / wall time of the whole call: pipeline construction, runner and
worker start-up, manifest) and "steady state" (the slope between the two sizes,
(LARGE - SMALL) / (t_LARGE - t_SMALL), which cancels one-off start-up). The target
(Beam per core >= 0.5 x bare loop) is judged on the steady state; pairs per CPU-second (all
processes of a run, from ``wait4``) are printed beside it. Peak memory is the child's peak RSS
(``wait4``'s ``ru_maxrss``); for beam-mp, whose workers are separate processes, the sum of the
RSS of the whole process tree, sampled every 0.1 s, is printed too. Target: peak at LARGE
<= 1.2 x peak at SMALL.

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

MODES = {
    "bare": (1, None),
    "beam": (1, ["--direct_running_mode=in_memory"]),  # explicit: large inputs default to multi-processing
    "beam-mp": (2, ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]),
}
SPLIT, CELL_DEG, SHARD_MB, SEED = "0.8,0.1,0.1", 0.25, 100.0, 0


# ---------------------------------------------------------------------------------------------
# child side: one run of one mode on one archive, reporting JSON on the last line of stdout


def _vm_hwm_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def bare_loop(raw: str, out: str) -> dict:
    """The pipeline's work in one plain loop: same config, same split, same shards, same stats."""
    from senclr import manifest as manifest_lib
    from senclr import raw_archive, storage, tfrecord
    from senclr.pipeline import filters, split
    from senclr.pipeline.preprocess import DEFAULT_CS_THRESHOLD, DEFAULT_MIN_CLEAR, shards_per_split
    from senclr.pipeline.stats import BandStatsFn
    from senclr.pipeline.transforms import REJECTS_FILE
    from senclr.schema import encode_record

    m = manifest_lib.read(raw, kind="raw")
    recorded = m.get("filters", {})
    s1_bands, s2_bands = m["bands"]["s1"], m["bands"]["s2"]
    patch_size = int(m.get("patch_size") or 0) or None
    cfg = filters.FilterConfig(tuple(s2_bands), patch_size, recorded.get("min_clear", DEFAULT_MIN_CLEAR),
                               recorded.get("cs_threshold", DEFAULT_CS_THRESHOLD), 0.05)
    fractions = split.parse_fractions(SPLIT)
    uris = raw_archive.list_pairs(raw)
    num_shards = shards_per_split(len(uris), fractions, patch_size or 64, len(s2_bands), SHARD_MB)
    stats_fn = BandStatsFn(tuple(s1_bands), tuple(s2_bands))
    acc = stats_fn.create_accumulator()
    shards: dict[tuple[str, int], list[tuple[str, bytes]]] = {}
    rejects, seen = [], {}
    storage.makedirs(out)
    for uri in uris:  # sorted, so the first copy of a pair id is the one KeepFirstFn keeps
        try:
            pair = raw_archive.read_pair(uri)
        except Exception as e:  # noqa: BLE001 - as ReadPairFn
            rejects.append({"pair_id": os.path.basename(uri).rsplit(".", 1)[0], "reason": "unreadable",
                            "detail": f"{type(e).__name__}: {e}", "source": uri})
            continue
        verdict = filters.check(pair, cfg)
        if verdict:
            rejects.append({"pair_id": pair.pair_id, "reason": verdict[0], "detail": verdict[1], "source": pair.origin})
            continue
        if pair.pair_id in seen:
            rejects.append({"pair_id": pair.pair_id, "reason": "duplicate",
                            "detail": f"same pair id as {seen[pair.pair_id]}", "source": pair.origin})
            continue
        seen[pair.pair_id] = pair.origin
        name = split.split_of(pair.meta.lon, pair.meta.lat, CELL_DEG, fractions, SEED)
        shard = zlib.crc32(pair.pair_id.encode()) % num_shards[name]
        shards.setdefault((name, shard), []).append((pair.pair_id, encode_record(pair, name)))
        stats_fn.add_input(acc, pair)
    written = []
    for (name, shard), records in sorted(shards.items()):
        data = tfrecord.encode_file(r for _, r in sorted(records))
        path = f"{name}-{shard:05d}.tfrecord"
        storage.write_bytes(storage.join(out, path), data)
        written.append({"path": path, "split": name, "records": len(records), "sha256": hashlib.sha256(data).hexdigest()})
    stats = stats_fn.extract_output(stats_fn.merge_accumulators([acc]))
    rejects.sort(key=lambda r: (r["pair_id"], r["reason"], r["source"]))
    storage.write_text(storage.join(out, REJECTS_FILE), "".join(json.dumps(r, sort_keys=True) + "\n" for r in rejects))
    summary = {"counts": {"read": len(uris), "kept": len(seen)}, "shards": written, "statistics": stats}
    storage.write_text(storage.join(out, "summary.json"), json.dumps(summary, sort_keys=True))
    return summary


def child(mode: str, raw: str, out: str) -> None:
    t0 = time.perf_counter()
    if mode == "bare":
        import senclr.pipeline.stats  # noqa: F401 - imports Beam (BandStatsFn is a CombineFn), as the pipeline does
        run = lambda: bare_loop(raw, out)  # noqa: E731
    else:
        from senclr.pipeline.preprocess import preprocess

        run = lambda: preprocess(raw, out, split=SPLIT, cell_deg=CELL_DEG, shard_mb=SHARD_MB,  # noqa: E731
                                 seed=SEED, beam_args=MODES[mode][1])
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


def run_child(mode: str, raw: str, out: str, log: str) -> dict:
    """One fresh subprocess; adds its CPU time, peak RSS and sampled peak process-tree RSS."""
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child", mode, raw, out],
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
    r["maxrss_kb"] = usage.ru_maxrss  # the largest single process of the run
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
                    help="the two archive sizes (default 1000 10000; 100 300 with --quick)")
    ap.add_argument("--patch-size", type=int, default=32)
    ap.add_argument("--quick", action="store_true", help="small sizes (100 and 300): a smoke run, ratios not meaningful")
    ap.add_argument("--repeats", type=int, default=1, help="runs of each mode and size; the fastest counts")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep the archives and outputs")
    ap.add_argument("--child", nargs=3, metavar=("MODE", "RAW", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    small, large = args.pairs or ((100, 300) if args.quick else (1000, 10000))
    if not 0 < small < large:
        ap.error("--pairs SMALL LARGE needs 0 < SMALL < LARGE")
    modes = list(MODES)

    from senclr.export.synthetic.source import generate

    work = args.keep or tempfile.mkdtemp(prefix="senclr-bench-")
    os.makedirs(work, exist_ok=True)
    try:
        raws = {}
        for n in (small, large):
            raws[n] = os.path.join(work, f"raw-{n}-{args.patch_size}")
            if not os.path.exists(os.path.join(raws[n], "manifest.json")):
                t0 = time.perf_counter()
                generate(raws[n], n, 0, patch_size=args.patch_size, s2_level="l1c")
                print(f"synthetic archive: {n} pairs of {args.patch_size}x{args.patch_size} L1C in "
                      f"{time.perf_counter() - t0:.1f} s (not part of any ratio)", flush=True)
        results: dict[tuple[str, int], dict] = {}
        for rep in range(args.repeats):
            for n in (small, large):
                for mode in modes:
                    out = os.path.join(work, f"out-{mode}-{n}")
                    shutil.rmtree(out, ignore_errors=True)
                    r = run_child(mode, raws[n], out, os.path.join(work, f"log-{mode}-{n}.txt"))
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
    if args.quick:
        print("\n--quick: a smoke run; at these sizes start-up and noise swamp the slopes, so its ratios mean nothing")
    print(f"\n{args.patch_size}x{args.patch_size} L1C pairs; kept {kept} of {large} at the default filters; "
          f"bare loop shards byte-identical to every pipeline's: yes; {os.cpu_count()} cores")
    print(f"{'mode':8s} {'pairs':>6s} {'workers':>7s} {'import s':>8s} {'wall s':>7s} {'cpu s':>7s} "
          f"{'pairs/s/core':>12s} {'peak RSS MB':>11s} {'tree MB':>8s}")
    for mode in modes:
        workers = MODES[mode][0]
        for n in (small, large):
            r = results[(mode, n)]
            print(f"{mode:8s} {n:6d} {workers:7d} {r['import_s']:8.2f} {r['wall_s']:7.2f} {r['cpu_s']:7.2f} "
                  f"{n / r['wall_s'] / workers:12.0f} {r['maxrss_kb'] / 1024:11.0f} {r['tree_kb'] / 1024:8.0f}")

    def rates(mode):
        workers = MODES[mode][0]
        a, b = results[(mode, small)], results[(mode, large)]
        with_startup = large / b["wall_s"] / workers
        dt = b["wall_s"] - a["wall_s"]
        steady = (large - small) / dt / workers if dt > 0 else None
        dcpu = b["cpu_s"] - a["cpu_s"]
        per_cpu = (large - small) / dcpu if dcpu > 0 else None
        return with_startup, steady, per_cpu

    bare = rates("bare")
    print("\nthroughput, pairs/s per core (per worker process):  including start-up | steady state | per CPU-second")
    for mode in modes:
        w, s, c = rates(mode)
        print(f"  {mode:8s} {w:10.0f} | {'n/a' if s is None else round(s):>10} | {'n/a' if c is None else round(c):>10}")
    for mode in modes[1:]:
        w, s, c = rates(mode)
        label = f"{mode} / bare"
        print(f"ratio {label:15s} per core, steady state:      "
              + _fmt_ratio(s / bare[1] if s and bare[1] else None, "target >= 0.5", s and bare[1] and s / bare[1] >= 0.5))
        print(f"ratio {label:15s} per core, incl. start-up:    {w / bare[0]:6.2f}")
        if c and bare[2]:
            print(f"ratio {label:15s} pairs per CPU-second:        {c / bare[2]:6.2f}")
    for mode in modes:
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
