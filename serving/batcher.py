"""Micro-batching: concurrent requests share one model call, off the event loop.

`MicroBatcher(run_batch)` accepts items from many coroutines and hands them to
`run_batch` (a plain function, run in a worker thread) in batches of at most
`max_batch` items. Throughput grows with load because the model's cost per call
is mostly fixed overhead; latency stays low when idle.

When a batch is dispatched (one dispatcher task, one batch in flight at a time):
- Idle: the dispatcher sleeps until an item arrives, then sends whatever is
  queued at once. A lone request never waits for `max_wait_ms`.
- Busy: items arriving while a batch runs queue up. When the batch finishes and
  items are waiting, the dispatcher waits up to `max_wait_ms` more (less if the
  batch fills) for late arrivals, then sends them all. The wait only happens
  under load, where a slightly later but larger batch serves everyone sooner.

`submit_many(items)` keeps a multi-item request together: its items go into the
same batch (chunks of `max_batch` when it is larger), never interleaved with others.

Errors: when `run_batch` raises for a batch, its items are retried one by one
in the same worker-thread call, so one bad item fails only its own caller.

The default executor has a single thread, so one model call runs at a time per
process (onnxruntime parallelises inside a call with its own intra-op threads).
`set_runner(fn)` swaps the function for later batches (model reload); a batch
already running finishes with the function it started with.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import Generic, Literal, TypeVar, overload

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("triage.serving.batcher")


class BatcherClosedError(RuntimeError):
    """The batcher is closed (or closing) and takes no new items."""


@dataclass(frozen=True)
class _Failed:
    error: BaseException


@dataclass
class _Unit(Generic[T, R]):
    """Items that travel together, and the future their outcomes go to."""

    items: list[T]
    future: asyncio.Future[list[R | _Failed]] = field(repr=False)


def _run_isolated(run_batch: Callable[[list[T]], list[R]], items: list[T]) -> list[R | _Failed]:
    """One call for the whole batch; on failure, one call per item so each gets its own outcome."""
    try:
        results = _checked(run_batch, items)
    except Exception as exc:
        if len(items) == 1:
            return [_Failed(exc)]
        log.info("batch of %d failed (%s); retrying its items one by one", len(items), exc)
    else:
        return list(results)
    outcomes: list[R | _Failed] = []
    for item in items:
        try:
            (result,) = _checked(run_batch, [item])
        except Exception as exc:
            outcomes.append(_Failed(exc))
        else:
            outcomes.append(result)
    return outcomes


def _checked(run_batch: Callable[[list[T]], list[R]], items: list[T]) -> Sequence[R]:
    results = run_batch(items)
    if len(results) != len(items):
        raise RuntimeError(f"run_batch returned {len(results)} results for {len(items)} items")
    return results


class MicroBatcher(Generic[T, R]):
    """Batches concurrent `submit` calls into `run_batch` calls; see the module docstring."""

    def __init__(
        self,
        run_batch: Callable[[list[T]], list[R]],
        max_batch: int = 32,
        max_wait_ms: float = 2.0,
        executor: Executor | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must not be negative, not {max_wait_ms}")
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self._runner = run_batch
        self._owns_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="triage-batch")
        # Called on the event loop with each batch's size (e.g. a metrics histogram).
        self._on_batch = on_batch
        self._queue: deque[_Unit[T, R]] = deque()
        self._queued_items = 0
        # asyncio.Event binds to a loop on first use, not here.
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def runner(self) -> Callable[[list[T]], list[R]]:
        return self._runner

    def set_runner(self, run_batch: Callable[[list[T]], list[R]]) -> None:
        """Use `run_batch` from the next batch on; the running batch keeps the function it started with."""
        self._runner = run_batch

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("MicroBatcher.start() was already called")
        self._task = asyncio.create_task(self._dispatch(), name="micro-batcher")

    async def aclose(self) -> None:
        """Stop taking items; items already accepted are still run and answered."""
        self._closing = True
        self._arrived.set()
        if self._task is not None:
            # wait(), not await: a dispatcher that stopped on an error has logged it and answered its callers.
            await asyncio.wait({self._task})
        if self._owns_executor:
            # The dispatcher has finished, so the worker thread is idle.
            self._executor.shutdown(wait=False)

    async def __aenter__(self) -> MicroBatcher[T, R]:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def submit(self, item: T) -> R:
        """Run one item in the next batch; raises what `run_batch` raised for this item."""
        (outcome,) = await self._enqueue([item])
        return _unwrap(outcome)

    @overload
    async def submit_many(self, items: Sequence[T], return_exceptions: Literal[False] = False) -> list[R]: ...

    @overload
    async def submit_many(self, items: Sequence[T], return_exceptions: Literal[True]) -> list[R | BaseException]: ...

    async def submit_many(
        self, items: Sequence[T], return_exceptions: bool = False
    ) -> list[R] | list[R | BaseException]:
        """Run a request of several items as one unit (split in chunks of `max_batch`).

        Outcomes come back in order. Like `asyncio.gather`, the first failing
        item's exception is raised unless `return_exceptions` puts each in its place.
        """
        chunks = [list(items[i : i + self.max_batch]) for i in range(0, len(items), self.max_batch)]
        # All chunks are queued before the first await so they stay consecutive.
        futures = [self._enqueue(chunk) for chunk in chunks]
        outcomes = [o for chunk_outcomes in await asyncio.gather(*futures) for o in chunk_outcomes]
        if return_exceptions:
            return [o.error if isinstance(o, _Failed) else o for o in outcomes]
        return [_unwrap(o) for o in outcomes]

    def _enqueue(self, items: list[T]) -> asyncio.Future[list[R | _Failed]]:
        if self._task is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        if self._closing or self._task.done():
            raise BatcherClosedError("the batcher is closed")
        future: asyncio.Future[list[R | _Failed]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Unit(items, future))
        self._queued_items += len(items)
        self._arrived.set()
        return future

    async def _dispatch(self) -> None:
        try:
            await self._serve()
        except BaseException as exc:
            # Nothing may wait forever on a batcher that has stopped: answer what is queued.
            if not isinstance(exc, asyncio.CancelledError):
                log.exception("the micro-batcher stopped")
            self._closing = True
            _fail(list(self._queue), BatcherClosedError("the batcher stopped"))
            self._queue.clear()
            self._queued_items = 0
            raise

    async def _serve(self) -> None:
        busy = False
        while True:
            if not self._queue:
                if self._closing:
                    return
                busy = False
                self._arrived.clear()
                await self._arrived.wait()
                continue
            if busy:
                await self._fill()
            batch = self._take()
            if batch:
                busy = True
                await self._execute(batch)

    async def _fill(self) -> None:
        """Under load, wait up to max_wait for more items, stopping as soon as a batch is full."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while self._queued_items < self.max_batch and not self._closing:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return

    def _take(self) -> list[_Unit[T, R]]:
        """Whole units from the front of the queue, up to max_batch items; drops abandoned ones."""
        batch: list[_Unit[T, R]] = []
        size = 0
        while self._queue and size + len(self._queue[0].items) <= self.max_batch:
            unit = self._queue.popleft()
            self._queued_items -= len(unit.items)
            if unit.future.done():  # the caller was cancelled (e.g. the client went away)
                continue
            batch.append(unit)
            size += len(unit.items)
        return batch

    async def _execute(self, batch: list[_Unit[T, R]]) -> None:
        items = [item for unit in batch for item in unit.items]
        if self._on_batch is not None:
            try:
                self._on_batch(len(items))
            except Exception:
                log.exception("on_batch callback failed")
        try:
            outcomes = await asyncio.get_running_loop().run_in_executor(
                self._executor, _run_isolated, self._runner, items
            )
        except Exception as exc:  # the executor itself failed (e.g. it was shut down)
            _fail(batch, exc)
        except BaseException:
            _fail(batch, BatcherClosedError("the batcher was stopped mid-batch"))
            raise
        else:
            _resolve(batch, outcomes)


def _resolve(batch: Sequence[_Unit[T, R]], outcomes: list[R | _Failed]) -> None:
    """Answer each unit with its slice of `outcomes` (callers that gave up are skipped)."""
    start = 0
    for unit in batch:
        end = start + len(unit.items)
        if not unit.future.done():
            unit.future.set_result(outcomes[start:end])
        start = end


def _fail(batch: Sequence[_Unit[T, R]], error: BaseException) -> None:
    failed: list[R | _Failed] = [_Failed(error)] * sum(len(unit.items) for unit in batch)
    _resolve(batch, failed)


def _unwrap(outcome: R | _Failed) -> R:
    if isinstance(outcome, _Failed):
        raise outcome.error
    return outcome
