"""TxnPipeline, prefetched and EtcdClient.clone against a real etcd 3.4."""

from __future__ import annotations

import threading

import pytest

from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import EtcdError, Op
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.pipeline import TxnPipeline, prefetched


def test_pipeline_writes_everything_and_calls_back_in_submission_order(etcd_single):
    client = etcd_single.client()
    seen: list[int] = []
    lock = threading.Lock()
    in_flight = {"now": 0, "max": 0}

    def work(worker, n):
        with lock:
            in_flight["now"] += 1
            in_flight["max"] = max(in_flight["max"], in_flight["now"])
        try:
            assert worker is not client  # each worker thread has its own connection
            ok, _rev = worker.txn([Op.put(f"/p/{n:03d}/{i}", str(n)) for i in range(100)])
            return n if ok else -1
        finally:
            with lock:
                in_flight["now"] -= 1

    with TxnPipeline(client, depth=3) as pipe:
        for n in range(40):
            pipe.submit(lambda worker, n=n: work(worker, n), seen.append)
    assert seen == list(range(40))
    assert in_flight["max"] <= 3
    assert client.count("/p/") == 4000
    assert {kv.value for kv in client.range("/p/039/")} == {b"39"}


def test_pipeline_raises_the_first_error_and_waits_for_calls_in_flight(etcd_single):
    client = etcd_single.client()
    done: list[int] = []
    too_big = [Op.put(f"/e/{i}", "x") for i in range(129)]
    with pytest.raises(EtcdError, match="at most 128 operations"), TxnPipeline(client, depth=2) as pipe:
        pipe.submit(lambda worker: worker.txn([Op.put("/e/first", "1")]), lambda _r: done.append(1))
        pipe.submit(lambda worker: worker.txn(too_big), lambda _r: done.append(2))
        pipe.submit(lambda worker: worker.txn([Op.put("/e/third", "3")]), lambda _r: done.append(3))
        pipe.drain()
    assert done == [1]
    assert client.get("/e/first") is not None and client.count("/e/") in (1, 2)  # the third may have run


def test_clone_authenticates_like_the_original(etcd_auth):
    client = etcd_auth.client()
    client.put("/calico/clone-probe", "v")
    other = client.clone()
    try:
        assert other.get("/calico/clone-probe").value == b"v"
        with pytest.raises(EtcdError, match="permission denied"):
            other.put("/elsewhere", "x")
    finally:
        other.close()
        client.delete("/calico/clone-probe")


def test_prefetched_yields_a_paged_range_in_order_at_one_revision(etcd_single):
    client = etcd_single.client()
    client.apply([Op.put(f"/r/{i:04d}", str(i)) for i in range(1000)], max_ops=100)
    rev = client.revision()
    client.put("/r/0500", "changed later")
    items = list(prefetched(client.range("/r/", page_size=64, revision=rev), chunk=50, depth=2))
    assert [kv.key for kv in items] == [f"/r/{i:04d}" for i in range(1000)]
    assert items[500].value == b"500"


def test_prefetched_raises_the_producers_error_and_stops_early_consumers():
    def failing():
        yield 1
        yield 2
        raise EtcdError("etcd x: boom")

    got = []
    with pytest.raises(EtcdError, match="boom"):
        for item in prefetched(failing(), chunk=1):
            got.append(item)
    assert got == [1, 2]

    produced = []

    def endless():
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    stream = prefetched(endless(), chunk=10, depth=2)
    assert [next(stream) for _item in range(5)] == [0, 1, 2, 3, 4]
    stream.close()  # the producer thread stops: it never runs far ahead
    assert len(produced) <= 10 * (2 + 2)  # one chunk consumed, two queued, one being built
