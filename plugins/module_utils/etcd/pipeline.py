# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Overlap etcd round trips with the caller's own work.

gRPC releases the GIL while a call waits for etcd, so a write in flight on a worker thread costs the
caller nothing: it builds the next batch meanwhile, and etcd commits concurrent transactions together.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import EtcdClient

T = TypeVar("T")
PIPELINE_DEPTH = 3  # transactions in flight; each on its own connection


class TxnPipeline:
    """Run ``work(client)`` calls on up to ``depth`` worker connections, in flight together.

    ``submit`` returns at once unless ``depth`` calls are already in flight; then it waits for the
    oldest. ``done(result)`` callbacks run on the caller's thread, in submission order, so counts
    and progress stay deterministic. ``drain`` waits for everything (an ordering barrier); the first
    error of a call is raised from ``submit``/``drain``, and leaving the block waits for all calls.
    """

    def __init__(self, client: EtcdClient, depth: int = PIPELINE_DEPTH) -> None:
        self.depth = max(1, depth)
        self._idle: queue.SimpleQueue[EtcdClient] = queue.SimpleQueue()
        self._clients = [client.clone() for _worker in range(self.depth)]
        for worker in self._clients:
            self._idle.put(worker)
        self._pool = ThreadPoolExecutor(max_workers=self.depth, thread_name_prefix="etcd-pipeline")
        self._pending: deque[tuple[Future, Callable[[Any], None] | None]] = deque()

    def _run(self, work: Callable[[EtcdClient], T]) -> T:
        worker = self._idle.get()
        try:
            return work(worker)
        finally:
            self._idle.put(worker)

    def submit(self, work: Callable[[EtcdClient], T], done: Callable[[T], None] | None = None) -> None:
        while len(self._pending) >= self.depth:
            self._collect()
        self._pending.append((self._pool.submit(self._run, work), done))

    def _collect(self) -> None:
        future, done = self._pending.popleft()
        result = future.result()
        if done is not None:
            done(result)

    def drain(self) -> None:
        while self._pending:
            self._collect()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._pending.clear()
        for worker in self._clients:
            worker.close()

    def __enter__(self) -> TxnPipeline:
        return self

    def __exit__(self, exc_type, *_exc) -> None:
        try:
            if exc_type is None:
                self.drain()
        finally:
            self.close()


_END = object()


def prefetched(items: Iterable[T], chunk: int = 500, depth: int = 4) -> Iterator[T]:
    """Iterate ``items`` (e.g. a paged range) on a background thread, up to ``depth`` chunks ahead.

    The next pages arrive while the caller works on this one; an error of the producer is raised
    here, and a consumer that stops early stops the producer.
    """
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            batch: list = []
            for item in items:
                batch.append(item)
                if len(batch) >= chunk:
                    if not _put(handoff, batch, stop):
                        return
                    batch = []
            if batch:
                _put(handoff, batch, stop)
            _put(handoff, _END, stop)
        except BaseException as exc:  # handed to the consumer, raised there
            _put(handoff, exc, stop)

    thread = threading.Thread(target=produce, name="etcd-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            batch = handoff.get()
            if batch is _END:
                return
            if isinstance(batch, BaseException):
                raise batch
            yield from batch
    finally:
        stop.set()
        thread.join()


def _put(handoff: queue.Queue, value, stop: threading.Event) -> bool:
    """Hand ``value`` over unless the consumer has stopped; False when it has."""
    while not stop.is_set():
        try:
            handoff.put(value, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False
