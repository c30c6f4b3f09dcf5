"""core.pipeline: a folder run reads the next image and writes the previous one while the current one runs."""

import threading
import time

import pytest

from core.errors import DataError
from core.pipeline import run_overlapped


def test_reading_and_writing_overlap_the_work_and_results_stay_in_order():
    events, written, lock = [], [], threading.Lock()

    def log(what, job):
        with lock:
            events.append((what, job, threading.current_thread().name, time.monotonic()))

    def read(job):
        log("read", job)
        return job * 10

    def work(job, loaded):
        log("work-start", job)
        time.sleep(0.05)  # the network's pass: long enough for the next read to happen meanwhile
        log("work-end", job)
        return loaded + 1

    def write(job, loaded, result):
        log("write", job)
        written.append((job, result))

    finished = []
    run_overlapped([1, 2, 3, 4], read, work, write, (DataError,), lambda job, error: None, finished.append)
    assert written == [(1, 11), (2, 21), (3, 31), (4, 41)] and finished == [1, 2, 3, 4]
    threads = {what: {name.split("_")[0] for w, _, name, _ in events if w == what} for what in ("read", "write")}
    assert threads == {"read": {"read"}, "write": {"write"}}
    assert {name for w, _, name, _ in events if w.startswith("work")} == {threading.main_thread().name}
    at = {(what, job): t for what, job, _, t in events}
    for job in (1, 2, 3):  # the next image was decoded before the current one finished
        assert at[("read", job + 1)] < at[("work-end", job)]


def test_a_bad_job_is_reported_and_the_run_goes_on():
    def read(job):
        if job == 2:
            raise DataError("2.png is not an image")
        return job

    def write(job, loaded, result):
        if job == 3:
            raise DataError("cannot write 3.png")

    failures, finished = [], []
    run_overlapped([1, 2, 3, 4], read, lambda job, loaded: loaded, write, (DataError,),
                   lambda job, error: failures.append((job, str(error))), finished.append)
    assert failures == [(2, "2.png is not an image"), (3, "cannot write 3.png")] and finished == [1, 4]


def test_an_interruption_lets_the_write_in_flight_finish():
    written = []

    def write(job, loaded, result):
        time.sleep(0.2)
        written.append(job)

    def work(job, loaded):
        if job == 2:
            raise KeyboardInterrupt
        return loaded

    with pytest.raises(KeyboardInterrupt):
        run_overlapped([1, 2, 3], lambda job: job, work, write, (DataError,), lambda *a: None, lambda job: None)
    assert written == [1]  # job 1's write was in flight when job 2 was interrupted: it completed


def test_read_ahead_reads_the_next_item_while_the_current_one_is_used_and_hands_over_errors():
    from core.pipeline import read_ahead

    started = {}

    def read(item):
        started[item] = time.monotonic()
        if item == "bad":
            raise DataError("bad.png is truncated")
        return item.upper()

    seen = []
    for item, result in read_ahead(["a", "bad", "c"], read):
        seen.append((item, str(result)))
        if item == "a":
            time.sleep(0.1)
            assert "bad" in started and started["bad"] < time.monotonic() - 0.05  # read while "a" was in use
    assert seen == [("a", "A"), ("bad", "bad.png is truncated"), ("c", "C")]
