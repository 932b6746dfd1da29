"""Micro-batching: concurrent requests share one encoder + index call, run off the event loop.

A single worker thread runs one batch at a time; whatever queued up meanwhile forms the next
batch, so batches grow with load and a lone request waits for nobody (`max_wait_ms` = 0).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from serving.metrics import Metrics
from serving.model import EncodeResult, ServedModel


def _init_worker() -> None:
    # OpenMP settings are per thread: without this FAISS would start a team of all cores here.
    from models_export.index import set_threads

    set_threads(1)


@dataclass(slots=True)
class _Job:
    model: ServedModel
    row: np.ndarray  # (max_len,) int64
    fetch: int
    future: asyncio.Future[EncodeResult]


class MicroBatcher:
    def __init__(
        self, max_size: int, max_wait_ms: float, metrics: Metrics, inline_max_ms: float = 0.0
    ) -> None:
        self.max_size = max_size
        self.inline_max_ms = inline_max_ms
        self._busy = False
        self.max_wait_s = max_wait_ms / 1000.0
        self.metrics = metrics
        self._queue: deque[_Job] = deque()
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="encoder", initializer=_init_worker
        )
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="micro-batcher")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for job in self._queue:
            if not job.future.done():
                job.future.cancel()
        self._executor.shutdown(wait=True)

    async def warm_up(self, model: ServedModel) -> None:
        """One batch through the worker thread, so the first request does not pay its start."""
        row = np.zeros(model.max_len, dtype=np.int64)
        row[-1] = int(model.popular_order[0])
        future = asyncio.get_running_loop().create_future()
        self._queue.append(_Job(model, row, 10, future))
        self._wakeup.set()
        await future

    def submit(
        self, model: ServedModel, row: np.ndarray, fetch: int, alone: bool = False
    ) -> asyncio.Future[EncodeResult]:
        """A future the caller may cancel (deadline): a cancelled job is skipped if not started.

        `alone`: no other request is in flight, so running inline delays nobody.
        """
        future: asyncio.Future[EncodeResult] = asyncio.get_running_loop().create_future()
        if alone and not self._busy and model.single_ms <= self.inline_max_ms:
            # Idle and cheap: two thread hand-offs would cost more than the work itself.
            encoded = model.encode_retrieve(row[None, :], fetch)
            # Observed once the request has its answer, as the use case's own metrics are.
            asyncio.get_running_loop().call_soon(self.metrics.batch_size.observe, 1)
            future.set_result(encoded.row(0, fetch, 1))
            return future
        self._queue.append(_Job(model, row, fetch, future))
        self._wakeup.set()
        return future

    def _take_batch(self) -> list[_Job]:
        batch: list[_Job] = []
        model = None
        skipped: list[_Job] = []
        while self._queue and len(batch) < self.max_size:
            job = self._queue.popleft()
            if job.future.done():  # cancelled by its deadline before it ran
                continue
            if model is None:
                model = job.model
            if job.model is not model:  # a reload happened: the other model waits one turn
                skipped.append(job)
                continue
            batch.append(job)
        self._queue.extendleft(reversed(skipped))
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            # Let requests that are ready to submit reach the queue before the batch closes.
            await asyncio.sleep(self.max_wait_s)
            batch = self._take_batch()
            if not batch:
                continue
            model = batch[0].model
            rows = np.stack([job.row for job in batch])
            fetch = max(job.fetch for job in batch)
            self._busy = True
            try:
                encoded = await loop.run_in_executor(
                    self._executor, model.encode_retrieve, rows, fetch
                )
            except Exception as exc:  # a broken batch fails its requests, not the batcher
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            finally:
                self._busy = False
            self.metrics.batch_size.observe(len(batch))
            for i, job in enumerate(batch):
                if not job.future.done():
                    job.future.set_result(encoded.row(i, job.fetch, len(batch)))
