"""Records/s of tf.data streams, each in its own process, timed one at a time (POSIX only).

Why processes: streams open side by side in one process disturb each other. While one is timed,
the others refill the buffers that their last block emptied (prefetch, parallel map, and the
prefetch sizes AUTOTUNE grew) on the same cores, and a stream whose buffers filled up while it
waited starts its next block from them (left idle for a while, a raw read then "ran" at 300k
records/s). Here every stream lives in a worker process that stops itself (SIGSTOP) the moment
its block ends, so nothing of it runs while another is timed, and it resumes (SIGCONT) exactly
where its buffers were.

Each block pulls batches inside a ``tf.function``, as ``model.fit`` does, so no Python runs per
batch; the worker reports records/s and the CPU cores the process used over the block.

    rates, cores = time_streams(script, ["raw", "input"], repeats, [...worker args...])

``script`` is re-run as ``script --stream NAME ...worker args``; it must then call
``serve(dataset, batch, records, warmup)``.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time


def _stop() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGSTOP)


def serve(ds, batch: int, records: int, warmup: int) -> None:
    """Worker side: warm ``ds`` up, then time one block of ``records`` records per line on stdin."""
    import tensorflow as tf

    it = iter(ds)

    @tf.function
    def take(n):
        got = tf.constant(0, tf.int64)
        for _ in tf.range(n):
            got += tf.cast(tf.shape(tf.nest.flatten(next(it))[0])[0], tf.int64)
        return got

    take(tf.constant(warmup, tf.int64)).numpy()  # traces, fills the shuffle buffer
    n = tf.constant(max(1, -(-records // batch)), tf.int64)
    print("ready")
    _stop()
    for _ in sys.stdin:
        t0, c0 = time.perf_counter(), time.process_time()
        got = int(take(n).numpy())
        wall = time.perf_counter() - t0
        print(f"{got / wall} {(time.process_time() - c0) / wall}")
        _stop()


class _Worker:
    def __init__(self, script: str, name: str, args: list[str]):
        self.name = name
        self.log = tempfile.TemporaryFile(mode="w+")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        self.proc = subprocess.Popen([sys.executable, script, "--stream", name, *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1, env=env)
        self._expect_stop(self.proc.stdout.readline())

    def _expect_stop(self, line: str) -> str:
        if not line:
            self.log.seek(0)
            raise RuntimeError(f"stream {self.name!r} failed:\n{self.log.read()[-3000:]}")
        os.waitpid(self.proc.pid, os.WUNTRACED)  # returns once it has stopped itself
        return line

    def block(self) -> tuple[float, float]:
        os.kill(self.proc.pid, signal.SIGCONT)
        self.proc.stdin.write("go\n")
        rate, cores = self._expect_stop(self.proc.stdout.readline()).split()
        return float(rate), float(cores)

    def close(self) -> None:
        self.proc.stdin.close()
        os.kill(self.proc.pid, signal.SIGCONT)
        self.proc.wait(timeout=60)
        self.log.close()


def time_streams(script: str, names: list[str], repeats: int, args: list[str]) -> tuple[dict, dict]:
    """({name: median records/s}, {name: median cores used}): blocks alternate, one at a time."""
    workers: dict[str, _Worker] = {}
    try:
        for name in names:
            workers[name] = _Worker(script, name, args)
        rates: dict = {name: [] for name in names}
        cores: dict = {name: [] for name in names}
        for r in range(repeats):
            for name in names if r % 2 == 0 else names[::-1]:
                rate, used = workers[name].block()
                rates[name].append(rate)
                cores[name].append(used)
    finally:
        for w in workers.values():
            if w.proc.poll() is None:
                try:
                    w.close()
                except Exception:  # a worker that will not finish must not outlive the run
                    w.proc.kill()
    return ({n: statistics.median(v) for n, v in rates.items()}, {n: statistics.median(v) for n, v in cores.items()})
