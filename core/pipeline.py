"""A folder run at full speed: while the network restores one image, the next is decoded and the previous one
encoded and written on two other threads (image decoders, encoders and torch's kernels release the GIL). At most
one image is read ahead and one written behind, so memory stays at about three images."""

from __future__ import annotations

import contextlib
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterator, Sequence, TypeVar

Job = TypeVar("Job")


def run_overlapped(
    jobs: Sequence[Job],
    read: Callable[[Job], object],
    work: Callable[[Job, object], object],
    write: Callable[[Job, object, object], None],
    errors: tuple[type[BaseException], ...],
    failed: Callable[[Job, BaseException], None],
    finished: Callable[[Job], None],
) -> None:
    """``read`` each job, ``work`` on it here, ``write`` the result, in job order, with reading (``read_ahead``) and
    writing on their own threads. An error of ``errors`` in any stage goes to ``failed(job, error)`` and the run
    goes on; a job whose write completed goes to ``finished``. On Ctrl-C (or any other exception) the write in
    flight completes before the exception propagates, so every output written is whole."""
    writing: tuple[Job, Future] | None = None

    def settle() -> None:  # the previous write: its outcome, before the next is queued
        nonlocal writing
        if writing is None:
            return
        job, future = writing
        writing = None
        try:
            future.result()
        except errors as error:
            failed(job, error)
        else:
            finished(job)

    with ThreadPoolExecutor(1, thread_name_prefix="write") as writer, \
            contextlib.closing(read_ahead(jobs, read)) as loaded_jobs:
        try:
            for job, loaded in loaded_jobs:
                try:
                    if isinstance(loaded, BaseException):
                        raise loaded
                    result = work(job, loaded)
                except errors as error:
                    failed(job, error)
                    continue
                settle()
                writing = (job, writer.submit(write, job, loaded, result))
            settle()
        finally:
            if writing is not None:
                writing[1].exception()  # wait: an interrupted run leaves no half-written output behind


def read_ahead(items: Sequence[Job], read: Callable[[Job], object]) -> Iterator[tuple[Job, object]]:
    """(item, what ``read`` returned, or the exception it raised) for each item in order, the next item read on
    another thread while the caller works on the current one."""
    if not items:
        return
    with ThreadPoolExecutor(1, thread_name_prefix="read") as reader:
        ahead = reader.submit(read, items[0])
        for index, item in enumerate(items):
            current, ahead = ahead, (reader.submit(read, items[index + 1]) if index + 1 < len(items) else None)
            try:
                result = current.result()
            except Exception as error:  # handed to the caller, which decides what is an error it reports
                result = error
            yield item, result
