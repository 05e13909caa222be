"""The recorder: every tick offered to it, stamped and numbered, written to disk off the tick path.

    tick path (event loop)           writer thread                          compactor thread
    offer(tick): seq, arrival_ns ─▶  bounded list  ─▶ a batch every ~200 ms ─▶ a finished day ─▶ Parquet
                 (full: dropped,     (or BATCH_ROWS)  ─▶ the IST hour's file   (day roll, start)
                  counted)                             (rotated on the hour)

`offer` is the only code on the tick path: a length check, a counter, a clock read and one `list.extend`
of a 3-tuple (one step under the GIL), never a lock, never a wait. The queue is one flat list (seq,
arrival_ns, tick, seq, ...), so the writer takes a batch with a slice and gets its seq and arrival
columns as slices too, with no Python-level step per tick. When the queue is full the tick is dropped
and counted (its `seq` is spent, so a gap in the recording shows where); the writer logs a warning at
most every `WARN_EVERY_S`. The writer turns what it takes into Arrow record batches and appends each to
the hour file of its ticks' arrival; a batch is written whole before the next, so a reader (and a
crash) sees whole batches. A day that is over is compacted to Parquet in a thread of its own, so the
writer keeps draining while it runs. `stop` drains the queue and closes the file; a crash loses at most
the batch being written and what was still queued.
"""
from __future__ import annotations

import array
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from queue import SimpleQueue

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from service.recording.files import SCHEMA, compact_day, day_of, days, hour_file, hour_files, hour_part, last_seq
from streams import Tick

__all__ = ["BATCH_ROWS", "INTERVAL_S", "Recorder", "RecorderCounts"]

log = logging.getLogger("tickguard.recording")

BATCH_ROWS = 8_192  # the most ticks in one record batch; a queue this long wakes the writer early
INTERVAL_S = 0.2  # the writer takes what is queued at least this often
WARN_EVERY_S = 10.0
HOUR_NS = 3_600 * 1_000_000_000
IST_OFFSET_NS = 19_800 * 1_000_000_000  # +05:30, all year
_U64, _I64 = pa.uint64(), pa.int64()
_EXCHANGE, _TOKEN = SCHEMA.field("exchange").type, SCHEMA.field("token").type


@dataclass(frozen=True, slots=True)
class RecorderCounts:
    recorded: int  # ticks written to hour files
    dropped: int  # ticks not recorded: the queue was full, or their batch could not be written
    queued: int  # ticks waiting for the writer now
    hour_files: int  # Arrow hour files begun
    day_files: int  # days compacted to Parquet


def tick_batch(flat: list, stamps: pa.Array | None = None) -> pa.RecordBatch:
    """A flat run of (seq, arrival_ns, tick) as one record batch of SCHEMA. This holds the interpreter
    beside the tick path, so it is the cheapest per tick measured: seq and arrival as slices of the flat
    list (no Python step per tick), a comprehension per tick field (cheaper than `attrgetter`,
    `msgspec.structs.astuple` or zip), a column with no value at all (bid, ask, volume on an LTP feed)
    as nulls without converting its Nones, and one exchange for all as a dictionary without hashing.
    `stamps`: the arrival column when the caller has made it already."""
    ticks = flat[2::3]
    count = len(ticks)
    exchanges = [tick.exchange for tick in ticks]
    return pa.RecordBatch.from_arrays([
        _ints(flat[0::3], "Q", _U64), _ints(flat[1::3]) if stamps is None else stamps, _exchange(exchanges, count),
        pa.array([tick.token for tick in ticks], _TOKEN), _ints([tick.ltp for tick in ticks]),
        _ints([tick.exchange_ts_ms for tick in ticks]), _optional([tick.bid for tick in ticks], count),
        _optional([tick.ask for tick in ticks], count), _optional([tick.volume for tick in ticks], count),
    ], schema=SCHEMA)


def _ints(column: list[int], code: str = "q", kind: pa.DataType = _I64) -> pa.Array:
    """Python ints as an Arrow column through `array.array`, whose buffer Arrow takes without a copy:
    about a quarter cheaper than `pa.array` on a list (measured)."""
    return pa.Array.from_buffers(kind, len(column), [None, pa.py_buffer(array.array(code, column))])


def _optional(column: list[int | None], count: int) -> pa.Array:
    nones = column.count(None)
    if nones == count:
        return pa.nulls(count, _I64)
    return _ints(column) if nones == 0 else pa.array(column, _I64)


def _exchange(column: list[str], count: int) -> pa.Array:
    if count and column.count(column[0]) == count:  # one exchange: every index 0, the bytes of zeros
        indices = pa.Array.from_buffers(_EXCHANGE.index_type, count, [None, pa.py_buffer(bytes(count))])
        return pa.DictionaryArray.from_arrays(indices, pa.array(column[:1], pa.string()))
    return pa.array(column, _EXCHANGE)


class _HourFile:
    """One hour's Arrow stream, opened as a new part: a stream cannot be appended to."""

    def __init__(self, root: Path, day: str, hour: int) -> None:
        taken = [key[1] for path in hour_files(root, day) if (key := hour_part(path)) and key[0] == hour]
        self.path = hour_file(root, day, hour, max(taken) + 1 if taken else 0)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._sink = pa.OSFile(str(self.path), "wb")
        try:
            self._writer = ipc.new_stream(self._sink, SCHEMA, options=ipc.IpcWriteOptions(compression="zstd"))
        except BaseException:
            self._sink.close()
            raise

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)
        self._sink.flush()

    def close(self) -> None:
        try:
            self._writer.close()
        finally:
            self._sink.close()


class Recorder:
    def __init__(self, root: Path | str, *, queue_limit: int = 100_000, clock_ns: Callable[[], int] = time.time_ns,
                 batch_rows: int = BATCH_ROWS, interval_s: float = INTERVAL_S) -> None:
        self.root = Path(root)
        self.limit = queue_limit
        self._now = clock_ns
        self._queue: list = []  # flat: seq, arrival_ns, tick, seq, arrival_ns, tick, ...
        self._batch_rows = batch_rows
        self._interval_s = interval_s
        self._wake = threading.Event()
        self._stopping = False
        self.dropped = 0  # bumped on the tick path only
        self.offer, self._go_on_from = self._tick_path(min(batch_rows, queue_limit) - 1)
        self._lost = 0  # ticks of batches that could not be written (the writer's count)
        self.recorded = 0
        self.hour_files = 0
        self.day_files = 0
        self._file: _HourFile | None = None
        self._hour: tuple[int, int] = (0, 0)  # the open file's [start, end) in arrival ns
        self._day = ""
        self._warned_at = float("-inf")
        self._warned_dropped = 0
        self._writer: threading.Thread | None = None
        self._compactions: SimpleQueue[str | None] = SimpleQueue()
        self._compactor: threading.Thread | None = None

    # The tick path ---------------------------------------------------------------------------------
    def _tick_path(self, wake_at: int) -> tuple[Callable[[Tick], None], Callable[[int], None]]:
        """`offer(tick)`: queue `tick` for the writer, or drop and count it when the queue is full; never
        blocks. A closure over locals, not a method: no attribute look-up on the tick path (measured
        cheaper). `go_on_from(seq)` sets the last seq handed out."""
        extend, now, wake, recorder = self._queue.extend, self._now, self._wake.set, self
        queue, room, wake_at = self._queue, 3 * self.limit, 3 * wake_at  # the flat list: three items a tick
        seq = itertools.count(1).__next__

        def offer(tick: Tick) -> None:
            waiting = len(queue)
            if waiting >= room:
                seq()  # spent: a gap in seq shows where ticks were dropped
                recorder.dropped += 1
                return
            extend((seq(), now(), tick))
            if waiting == wake_at:  # a batch's worth is waiting: no need to sit out the interval
                wake()

        def go_on_from(last: int) -> None:
            nonlocal seq
            seq = itertools.count(last + 1).__next__

        return offer, go_on_from

    # Life cycle (blocking: call from a thread, not the event loop) ---------------------------------
    def start(self) -> None:
        """Go on from the highest seq on disk, compact earlier days left in hour files, start writing."""
        self.root.mkdir(parents=True, exist_ok=True)
        last = last_seq(self.root) or 0
        self._go_on_from(last)
        self._day = day_of(self._now())[0]
        self._compactor = threading.Thread(target=self._compact_days, name="recording-compactor", daemon=True)
        self._compactor.start()
        self._compactions.put(self._day)
        self._writer = threading.Thread(target=self._write_queued, name="recording-writer", daemon=True)
        self._writer.start()
        log.info("recording ticks", extra={"dir": str(self.root), "from_seq": last + 1})

    def stop(self) -> None:
        """Write what is queued, close the file, let a compaction under way finish."""
        if self._writer is None:
            return
        self._stopping = True
        self._wake.set()
        self._writer.join()
        self._writer = None
        self._compactions.put(None)
        if self._compactor is not None:
            self._compactor.join()
        counts = self.counts()
        log.info("recording stopped", extra={"recorded": counts.recorded, "dropped": counts.dropped,
                                             "hour_files": counts.hour_files, "day_files": counts.day_files})

    def counts(self) -> RecorderCounts:
        return RecorderCounts(self.recorded, self.dropped + self._lost, len(self._queue) // 3, self.hour_files,
                              self.day_files)

    # The writer thread -----------------------------------------------------------------------------
    def _write_queued(self) -> None:
        while True:
            self._wake.wait(self._interval_s)
            self._wake.clear()
            stopping = self._stopping  # read before draining: whatever was offered before stop() is written
            self._drain()
            self._warn_dropped()
            if stopping:
                break
        self._close_file()

    def _drain(self) -> None:
        queue, step = self._queue, 3 * self._batch_rows
        while queue:
            taken = queue[:]  # all that waits, in a slice and a del, each one step under the GIL (offer only
            del queue[:len(taken)]  # appends); taken whole, not a batch at a time: no memmove of the rest each
            for start in range(0, len(taken), step):
                self._write_batch(taken if len(taken) <= step else taken[start:start + step])

    def _write_batch(self, entries: list) -> None:
        recorded = self.recorded
        try:
            self._write(entries)
        except Exception as exc:  # a full disk, or anything else: the writer goes on, the service never notices
            lost = len(entries) // 3 - (self.recorded - recorded)  # a batch across the hour may have half gone in
            self._lost += lost
            log.error("recording: a batch could not be written", extra={"ticks": lost, "error": repr(exc)},
                      exc_info=not isinstance(exc, (OSError, pa.ArrowException)))
            self._close_file()

    def _write(self, entries: list) -> None:
        """Each run of (flat) entries that arrived within one IST hour into that hour's file."""
        stamps = _ints(entries[1::3])  # an Arrow column: its bounds without a Python step per tick
        start, count = 0, len(stamps)
        while start < count:
            rest = stamps.slice(start)
            self._rotate(rest[0].as_py())
            low, high = self._hour
            bounds = pc.min_max(rest)
            if low <= bounds["min"].as_py() and bounds["max"].as_py() < high:  # the rest in this hour (the usual case)
                end = count
            else:  # a clock set back, or the hour turning: up to the first tick outside this hour
                outside = pc.indices_nonzero(pc.or_(pc.less(rest, low), pc.greater_equal(rest, high)))
                end = start + outside[0].as_py()
            assert self._file is not None
            whole = end - start == count
            self._file.write(tick_batch(entries if whole else entries[3 * start:3 * end],
                                        stamps if whole else stamps.slice(start, end - start)))
            self.recorded += end - start
            start = end

    def _rotate(self, arrival_ns: int) -> None:
        low, high = self._hour
        if self._file is not None and low <= arrival_ns < high:
            return
        self._close_file()
        low = (arrival_ns + IST_OFFSET_NS) // HOUR_NS * HOUR_NS - IST_OFFSET_NS
        day, hour = day_of(low)
        if day != self._day:
            self._day = day
            self._compactions.put(day)  # the day before is over
        self._file = _HourFile(self.root, day, hour)
        self._hour = (low, low + HOUR_NS)
        self.hour_files += 1

    def _close_file(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            try:
                file.close()
            except Exception as exc:
                log.error("recording: an hour file could not be closed", extra={"file": str(file.path),
                                                                                  "error": repr(exc)})

    def _warn_dropped(self) -> None:
        dropped = self.dropped + self._lost
        now = time.monotonic()
        if dropped > self._warned_dropped and now - self._warned_at >= WARN_EVERY_S:
            log.warning("recording: ticks dropped (the writer fell behind: RECORD_QUEUE is full)",
                        extra={"dropped": dropped - self._warned_dropped, "dropped_total": dropped,
                               "queue": self.limit})
            self._warned_at, self._warned_dropped = now, dropped

    # The compactor thread --------------------------------------------------------------------------
    def _compact_days(self) -> None:
        """Every day before the one named that still has hour files, to Parquet; None ends the thread."""
        while (today := self._compactions.get()) is not None:
            for day in days(self.root):
                if day >= today or not hour_files(self.root, day):
                    continue
                try:
                    path = compact_day(self.root, day)
                except Exception as exc:  # its hour files stay: read as they are, compacted at the next start
                    log.error("recording: a day could not be compacted", extra={"day": day, "error": repr(exc)},
                              exc_info=not isinstance(exc, (OSError, pa.ArrowException)))
                    continue
                if path is not None:
                    self.day_files += 1
                    log.info("recording: day compacted", extra={"day": day, "file": str(path)})
