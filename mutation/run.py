"""Mutation check of the modules that decide data (issue 12), with cosmic-ray.

    .venv/bin/python mutation/run.py                 # every module of mutation/modules.toml
    .venv/bin/python mutation/run.py filters split   # some of them
    .venv/bin/python mutation/run.py --report        # the table of the last sessions, nothing run

For each module, one after the other: write a cosmic-ray config into mutation/.sessions/, create
the session (``cosmic-ray init``), mark as skipped the mutants this check does not run (see
EXCLUDED_OPERATORS, annotations, the per-module ``max_mutants`` sample, and the sampled mutants
already listed in mutation/equivalents.toml: counted as equivalent, not run), check that the
tests pass on the unmutated code (``cosmic-ray baseline``), run the mutants (``cosmic-ray exec``,
which mutates the file in place, runs the module's tests, and puts the file back), then print
one row per module: mutants run, killed, survived, timeouts, equivalent (listed in
mutation/equivalents.toml) and the score, killed / (run - equivalent). Survivors with their
diffs go to mutation/.sessions/<module>.survivors.txt.

The source file is copied to mutation/.sessions/<module>.orig before anything mutates it and
put back afterwards whatever happens (Ctrl-C, an error, SIGTERM); a copy left behind by a run
killed outright (SIGKILL, power loss) is put back at the start of the next run.
"""

from __future__ import annotations

import argparse
import ast
import fcntl
import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LISTED = "listed in equivalents.toml: counted as equivalent, not run"
HERE = ROOT / "mutation"
SESSIONS = HERE / ".sessions"
BIN = Path(sys.executable).parent

# Mutants this check never runs (the same for every module):
EXCLUDED_OPERATORS = [
    # arithmetic -> bitwise or shift: a TypeError on floats and arrays of floats, so killed by any test
    # that reaches the line; they cost a test run each and say nothing the arithmetic swaps don't
    r"core/ReplaceBinaryOperator_(Add|Sub|Mul|Div|FloorDiv|Mod|Pow)_(BitAnd|BitOr|BitXor|LShift|RShift)$",
    # value comparison -> identity (`==` -> `is`): depends on CPython's caching of small ints and
    # strings, not on the code under test
    r"core/ReplaceComparisonOperator_(Eq|NotEq|Lt|LtE|Gt|GtE)_(Is|IsNot)$",
    # `x is None` -> `x == None` / `x is not None` -> `x != None`: equivalent for the values here
    r"core/ReplaceComparisonOperator_Is_Eq$",
    r"core/ReplaceComparisonOperator_IsNot_NotEq$",
    # `x is None` -> `x < None`: a TypeError wherever the line runs
    r"core/ReplaceComparisonOperator_(Is|IsNot)_(Lt|LtE|Gt|GtE)$",
]


def load_modules() -> dict[str, dict]:
    with open(HERE / "modules.toml", "rb") as f:
        return tomllib.load(f)


def load_equivalents() -> dict[str, dict[str, str]]:
    """{module: {mutant key: why it is equivalent or accepted}} from mutation/equivalents.toml."""
    path = HERE / "equivalents.toml"
    if not path.exists():
        return {}
    with open(path, "rb") as f:
        data = tomllib.load(f)
    return {mod: {e["key"]: e["why"] for e in entries} for mod, entries in data.items()}


def test_command(spec: dict) -> str:
    cmd = [str(BIN / "python"), "-m", "pytest", "-x", "-q", "-n", "0", "-p", "no:cacheprovider", *spec["tests"]]
    if spec.get("k"):
        cmd += ["-k", spec["k"]]
    return shlex.join(cmd)


def write_config(name: str, spec: dict) -> Path:
    cfg = SESSIONS / f"{name}.toml"
    text = (
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(spec['path'])}\n"
        f"timeout = {float(spec.get('timeout', 60))}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(test_command(spec))}\n\n"
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
    )
    cfg.write_text(text)
    return cfg


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) (line, col) of every annotation: with ``from __future__ import annotations``
    they are never evaluated, so mutating them (``int | None`` -> ``int & None``) changes nothing."""
    spans = []
    for node in ast.walk(ast.parse(source)):
        notes = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            notes.append(node.returns)
        if isinstance(node, ast.arg) and node.annotation is not None:
            notes.append(node.annotation)
        if isinstance(node, ast.AnnAssign):
            notes.append(node.annotation)
        spans += [((n.lineno, n.col_offset), (n.end_lineno, n.end_col_offset)) for n in notes]
    return spans


def mutant_key(lines: list[str], mutation) -> str:
    """A name for a mutant that survives edits elsewhere in the file: operator, the stripped
    source line, and the column within it."""
    line, col = mutation.start_pos
    text = lines[line - 1]
    indent = len(text) - len(text.lstrip())
    return f"{mutation.operator_name} @ {text.strip()} @ {col - indent}"


def select(name: str, spec: dict, db_path: Path, source: str) -> int:
    """Mark skipped what this check does not run; the number of mutants left to run."""
    import re

    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    excluded = re.compile("|".join(f"(?:{e})" for e in EXCLUDED_OPERATORS))
    notes = annotation_spans(source)
    lines = source.splitlines()

    def in_annotation(pos):
        return any(a <= tuple(pos) < b for a, b in notes)

    with use_db(str(db_path), WorkDB.Mode.open) as db:
        keep, skip = [], []
        everything = list(db.pending_work_items)
        for item in everything:
            m = item.mutations[0]
            if excluded.match(m.operator_name):
                skip.append((item.job_id, "excluded operator"))
            elif in_annotation(m.start_pos):
                skip.append((item.job_id, "inside an annotation"))
            else:
                keep.append(item)
        cap = spec.get("max_mutants")
        if cap is not None and len(keep) > cap:
            # a deterministic sample: the same file gives the same mutants on every run
            keep.sort(key=lambda it: hashlib.sha256(mutant_key(lines, it.mutations[0]).encode()).hexdigest())
            skip += [(it.job_id, "not in this module's sample") for it in keep[cap:]]
            keep = keep[:cap]
        # Mutants listed as equivalent are counted, not run: they would only confirm they survive.
        # Only where the key names one mutant of the whole file: a key two mutants share (e.g.
        # NumberReplacer's +1 and -1) may be listed for one of them only, so both still run.
        known = load_equivalents().get(name, {})
        counts = Counter(mutant_key(lines, it.mutations[0]) for it in everything)
        listed = {it.job_id for it in keep if counts[k := mutant_key(lines, it.mutations[0])] == 1 and k in known}
        skip += [(job_id, LISTED) for job_id in listed]
        keep = [it for it in keep if it.job_id not in listed]
        for job_id, why in skip:
            db.set_result(job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output=why))
    return len(keep)


def _restore(path: Path, backup: Path) -> None:
    if backup.exists():
        original = backup.read_bytes()
        if path.read_bytes() != original:
            path.write_bytes(original)
            print(f"  restored {path.relative_to(ROOT)} from {backup.relative_to(ROOT)}", flush=True)
        backup.unlink()


def restore_leftovers(modules: dict[str, dict]) -> None:
    for name, spec in modules.items():
        _restore(ROOT / spec["path"], SESSIONS / f"{name}.orig")


def _cosmic_ray(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "cosmic-ray"), *args], cwd=ROOT, **kw)


def run_module(name: str, spec: dict, dry_run: bool = False) -> None:
    path = ROOT / spec["path"]
    backup = SESSIONS / f"{name}.orig"
    db_path = SESSIONS / f"{name}.sqlite"
    cfg = write_config(name, spec)
    source = path.read_text()
    backup.write_text(source)
    try:
        db_path.unlink(missing_ok=True)
        _cosmic_ray("init", str(cfg), str(db_path), check=True)
        todo = select(name, spec, db_path, source)
        print(f"[{name}] {todo} mutants to run", flush=True)
        if dry_run:
            return
        t0 = time.monotonic()
        base = _cosmic_ray("baseline", str(cfg), capture_output=True, text=True)
        if base.returncode != 0:
            raise SystemExit(f"[{name}] the tests fail on the unmutated code:\n{base.stdout}\n{base.stderr}")
        print(f"[{name}] baseline passed in {time.monotonic() - t0:.1f} s; exec ...", flush=True)
        t0 = time.monotonic()
        # its own session: a Ctrl-C reaches it only through us, after which we put the file back
        proc = subprocess.Popen([str(BIN / "cosmic-ray"), "exec", str(cfg), str(db_path)], cwd=ROOT,
                                start_new_session=True)
        try:
            proc.wait()
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # cosmic-ray puts the file back on KeyboardInterrupt
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        if proc.returncode != 0:
            raise SystemExit(f"[{name}] cosmic-ray exec failed with status {proc.returncode}")
        (SESSIONS / f"{name}.seconds").write_text(f"{time.monotonic() - t0:.0f}\n")
    finally:
        _restore(path, backup)


def summarise(name: str, spec: dict, equivalents: dict[str, str]) -> dict | None:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    db_path = SESSIONS / f"{name}.sqlite"
    if not db_path.exists():
        return None
    orig = SESSIONS / f"{name}.orig"  # while a run has the file mutated, its unmutated copy
    lines = (orig if orig.exists() else ROOT / spec["path"]).read_text().splitlines()
    row = {"module": name, "path": spec["path"], "total": 0, "run": 0, "killed": 0, "survived": 0, "timeouts": 0,
           "equivalent": 0, "pending": 0, "incompetent": 0}
    survivors = []
    with use_db(str(db_path), WorkDB.Mode.open) as db:
        row["total"] = db.num_work_items
        done = db.completed_work_items
        row["pending"] = row["total"] - len(done)
        for item, result in done:
            key = mutant_key(lines, item.mutations[0])
            if result.worker_outcome == WorkerOutcome.SKIPPED:
                if result.output == LISTED and key in equivalents:  # in the sample, equivalent, not run
                    row["run"] += 1
                    row["equivalent"] += 1
                    survivors.append((key, equivalents[key], "(listed as equivalent: not run)"))
                continue
            row["run"] += 1
            if result.test_outcome == TestOutcome.SURVIVED:
                if key in equivalents:
                    row["equivalent"] += 1
                else:
                    row["survived"] += 1
                survivors.append((key, equivalents.get(key), result.diff))
            elif result.test_outcome == TestOutcome.KILLED:
                row["killed"] += 1
                row["timeouts"] += result.output == "timeout"
            else:
                row["incompetent"] += 1  # the mutant could not even be imported or run
                row["killed"] += 1
    real = row["run"] - row["equivalent"]
    row["score"] = round(100 * row["killed"] / real, 1) if real else None
    seconds = SESSIONS / f"{name}.seconds"
    row["seconds"] = int(seconds.read_text()) if seconds.exists() else None
    with open(SESSIONS / f"{name}.survivors.txt", "w") as f:
        for key, why, diff in sorted(survivors, key=lambda s: s[0]):
            f.write(f"=== {key}\n{'EQUIVALENT/ACCEPTED: ' + why if why else 'SURVIVED'}\n{diff}\n")
    return row


def print_table(rows: list[dict]) -> None:
    head = ("module", "mutants", "killed", "survived", "timeouts", "equivalent", "score %", "seconds")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(" --- " for _ in head) + "|")
    for r in rows:
        score = "-" if r["score"] is None else f"{r['score']:.1f}"
        print(f"| {r['module']} | {r['run']} | {r['killed']} | {r['survived']} | {r['timeouts']} | "
              f"{r['equivalent']} | {score} | {r['seconds'] if r['seconds'] is not None else '-'} |")
    run = sum(r["run"] for r in rows)
    killed = sum(r["killed"] for r in rows)
    eq = sum(r["equivalent"] for r in rows)
    if run - eq:
        print(f"| all | {run} | {killed} | {sum(r['survived'] for r in rows)} | {sum(r['timeouts'] for r in rows)} | "
              f"{eq} | {100 * killed / (run - eq):.1f} | {sum(r['seconds'] or 0 for r in rows)} |")


def _sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", help="names from mutation/modules.toml (default: all)")
    parser.add_argument("--report", action="store_true", help="only print the table of the last sessions")
    parser.add_argument("--dry-run", action="store_true", help="create the sessions and count the mutants, run none")
    args = parser.parse_args(argv)
    modules = load_modules()
    unknown = [m for m in args.modules if m not in modules]
    if unknown:
        parser.error(f"unknown modules {unknown}; known: {', '.join(modules)}")
    names = args.modules or list(modules)
    SESSIONS.mkdir(exist_ok=True)
    lock = open(SESSIONS / "lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        if not args.report:
            parser.error("another mutation/run.py is running (mutation/.sessions/lock); wait for it or stop it")
        lock = None  # a report beside a run: touch no source file, read the run's .orig copies
    if lock is not None:
        restore_leftovers(modules)  # only with the lock: no other run has a file mutated now
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGINT, _sigterm)  # also when started in the background, where SIGINT is ignored
    if not args.report:
        try:
            for name in names:
                run_module(name, modules[name], args.dry_run)
        except KeyboardInterrupt:
            print("\ninterrupted: source files restored; the table below covers what ran", file=sys.stderr)
    equivalents = load_equivalents()
    rows = [r for r in (summarise(n, modules[n], equivalents.get(n, {})) for n in names) if r and r["run"]]
    (SESSIONS / "summary.json").write_text(json.dumps(rows, indent=1))
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
