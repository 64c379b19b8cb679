"""MicroBatcher: batching under load, no delay when idle, per-item errors, drain, a free event loop."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from serving.batcher import BatcherClosedError, MicroBatcher


class Recorder:
    """A run_batch that doubles numbers, remembers its batches and can be slow or refuse an item."""

    def __init__(self, delay_s: float = 0.0, bad: int | None = None) -> None:
        self.delay_s = delay_s
        self.bad = bad
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay_s)
        if self.bad in items:
            raise ValueError(f"item {items.index(self.bad)}: bad value {self.bad}")
        return [2 * x for x in items]


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(main())


def test_results_go_back_to_their_callers() -> None:
    recorder = Recorder(delay_s=0.005)

    async def main() -> None:
        async with MicroBatcher(recorder, max_batch=8) as batcher:
            single = await asyncio.gather(*(batcher.submit(i) for i in range(20)))
            many = await batcher.submit_many([5, 6, 7])
        assert single == [2 * i for i in range(20)]
        assert many == [10, 12, 14]

    run(main)
    assert all(t.startswith("triage-batch") for t in recorder.threads)


def test_concurrent_submits_are_batched() -> None:
    recorder = Recorder(delay_s=0.01)

    async def main() -> None:
        async with MicroBatcher(recorder, max_batch=32, max_wait_ms=2) as batcher:
            results = await asyncio.gather(*(batcher.submit(i) for i in range(64)))
        assert results == [2 * i for i in range(64)]

    run(main)
    sizes = [len(b) for b in recorder.batches]
    assert sum(sizes) == 64
    assert max(sizes) > 1
    assert max(sizes) <= 32
    assert len(sizes) <= 8, sizes


def test_submit_many_stays_together_and_splits_above_max_batch() -> None:
    recorder = Recorder(delay_s=0.01)

    async def main() -> None:
        async with MicroBatcher(recorder, max_batch=4) as batcher:
            blocker = asyncio.create_task(batcher.submit(100))
            await asyncio.sleep(0.002)  # the blocker's batch is running; the rest queue behind it
            lone = asyncio.create_task(batcher.submit(50))
            many = await batcher.submit_many(list(range(10)))
            await asyncio.gather(blocker, lone)
        assert many == [2 * i for i in range(10)]

    run(main)
    chunks = [b for b in recorder.batches if set(b) & set(range(10))]
    assert [sorted(set(b) & set(range(10))) for b in chunks] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_lone_request_is_not_delayed_by_max_wait() -> None:
    async def main() -> None:
        async with MicroBatcher(Recorder(), max_wait_ms=2000) as batcher:
            await batcher.submit(1)  # warm the worker thread
            start = time.perf_counter()
            assert await batcher.submit(2) == 4
            elapsed = time.perf_counter() - start
        assert elapsed < 0.5, elapsed

    run(main)


def test_busy_batcher_waits_for_late_arrivals_up_to_max_wait() -> None:
    recorder = Recorder(delay_s=0.02)

    async def main() -> None:
        async with MicroBatcher(recorder, max_batch=32, max_wait_ms=50) as batcher:
            first = asyncio.create_task(batcher.submit(0))
            await asyncio.sleep(0.005)
            second = asyncio.create_task(batcher.submit(1))  # queued while batch [0] runs
            await asyncio.sleep(0.03)  # batch [0] is done; the dispatcher now waits for more
            third = asyncio.create_task(batcher.submit(2))
            await asyncio.gather(first, second, third)

    run(main)
    assert recorder.batches == [[0], [1, 2]]


def test_one_bad_item_fails_only_its_caller() -> None:
    recorder = Recorder(delay_s=0.005, bad=3)

    async def main() -> None:
        async with MicroBatcher(recorder, max_batch=16) as batcher:
            outcomes = await asyncio.gather(*(batcher.submit(i) for i in range(8)), return_exceptions=True)
            with pytest.raises(ValueError, match="bad value 3"):
                await batcher.submit_many([1, 3, 5])
            mixed = await batcher.submit_many([1, 3, 5], return_exceptions=True)
        for i, outcome in enumerate(outcomes):
            if i == 3:
                assert isinstance(outcome, ValueError)
            else:
                assert outcome == 2 * i
        assert mixed[0] == 2 and mixed[2] == 10
        assert isinstance(mixed[1], ValueError)

    run(main)
    assert [3] in recorder.batches  # the retry isolated the bad item


def test_wrong_number_of_results_is_an_error_not_a_hang() -> None:
    def drops_one(items: list[int]) -> list[int]:
        return items[:-1]

    async def main() -> None:
        async with MicroBatcher(drops_one) as batcher:
            with pytest.raises(RuntimeError, match="returned 0 results for 1 items"):
                await batcher.submit(1)

    run(main)


def test_close_drains_accepted_items_and_refuses_new_ones() -> None:
    recorder = Recorder(delay_s=0.01)

    async def main() -> None:
        batcher: MicroBatcher[int, int] = MicroBatcher(recorder, max_batch=4)
        await batcher.start()
        pending = [asyncio.create_task(batcher.submit(i)) for i in range(10)]
        await asyncio.sleep(0)  # let the tasks enqueue
        await batcher.aclose()
        assert all(task.done() for task in pending)
        assert [task.result() for task in pending] == [2 * i for i in range(10)]
        with pytest.raises(BatcherClosedError):
            await batcher.submit(1)

    run(main)


def test_submit_before_start_is_refused() -> None:
    async def main() -> None:
        with pytest.raises(RuntimeError, match="start"):
            await MicroBatcher(Recorder()).submit(1)

    run(main)


def test_cancelled_callers_are_skipped() -> None:
    recorder = Recorder(delay_s=0.02)

    async def main() -> None:
        async with MicroBatcher(recorder) as batcher:
            running = asyncio.create_task(batcher.submit(0))
            await asyncio.sleep(0.005)
            abandoned = asyncio.create_task(batcher.submit(1))
            await asyncio.sleep(0)
            abandoned.cancel()
            assert await batcher.submit(2) == 4
            await running

    run(main)
    assert [1] not in recorder.batches
    assert all(1 not in b for b in recorder.batches)


def test_event_loop_stays_responsive_during_a_slow_batch() -> None:
    ticks: list[float] = []

    async def heartbeat(stop: asyncio.Event) -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    async def main() -> None:
        stop = asyncio.Event()
        beat = asyncio.create_task(heartbeat(stop))
        async with MicroBatcher(Recorder(delay_s=0.3)) as batcher:
            assert await batcher.submit(1) == 2
        stop.set()
        await beat

    run(main)
    assert len(ticks) >= 10
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.15


def test_set_runner_applies_to_later_batches_only() -> None:
    old = Recorder(delay_s=0.05)

    def new(items: list[int]) -> list[int]:
        return [-x for x in items]

    async def main() -> None:
        async with MicroBatcher(old) as batcher:
            running = asyncio.create_task(batcher.submit(1))
            await asyncio.sleep(0.01)  # the old runner is mid-batch
            batcher.set_runner(new)
            assert await running == 2
            assert await batcher.submit(3) == -3

    run(main)


def test_on_batch_sees_each_batch_size() -> None:
    sizes: list[int] = []

    async def main() -> None:
        async with MicroBatcher(Recorder(delay_s=0.005), max_batch=5, on_batch=sizes.append) as batcher:
            await batcher.submit_many(list(range(12)))

    run(main)
    assert sizes == [5, 5, 2]


def test_a_broken_executor_fails_the_callers_instead_of_hanging() -> None:
    executor = ThreadPoolExecutor(max_workers=1)
    executor.shutdown()

    async def main() -> None:
        async with MicroBatcher(Recorder(), executor=executor) as batcher:
            outcomes = await asyncio.wait_for(
                asyncio.gather(batcher.submit(1), batcher.submit(2), return_exceptions=True), timeout=5
            )
        assert all(isinstance(o, RuntimeError) for o in outcomes)

    run(main)


def test_a_failing_on_batch_callback_does_not_stop_batching() -> None:
    def broken(size: int) -> None:
        raise RuntimeError("metrics are down")

    async def main() -> None:
        async with MicroBatcher(Recorder(), on_batch=broken) as batcher:
            assert await batcher.submit(1) == 2
            assert await batcher.submit(2) == 4

    run(main)


@pytest.mark.parametrize(("max_batch", "max_wait_ms"), [(0, 2.0), (4, -1.0)])
def test_bad_settings_are_refused(max_batch: int, max_wait_ms: float) -> None:
    with pytest.raises(ValueError):
        MicroBatcher(Recorder(), max_batch=max_batch, max_wait_ms=max_wait_ms)
