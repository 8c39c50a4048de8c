"""Micro-batching: concurrent requests share model calls, run in one worker thread.

Every tweet becomes a :class:`Job` with its own future. A collector task on the event loop
takes the waiting jobs in micro-batches of at most ``max_batch_size``: when the worker is idle
it waits up to ``max_wait_ms`` after the first job for others to join (or until the batch is
full), and jobs that arrive while the model runs form the next batch right away. So batches
grow with load and a lone request waits at most ``max_wait_ms``.

The model call (cleaning, tokenization, inference) runs in a single dedicated thread, so the
event loop never blocks; ``after_batch`` (request log, metrics) runs there too, after the
futures are resolved, so it adds no latency. :meth:`MicroBatcher.close` stops taking jobs and
drains the queue before it returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field

import numpy as np

logger = logging.getLogger(__name__)

#: ``predict(texts, keywords) -> (probabilities, token_counts)``, one each per tweet
#: (:class:`tweetcls.inference.base.Scores`, e.g. a partial of ``Backend.score``).
PredictFn = Callable[[Sequence[str], Sequence[str | None]], tuple[np.ndarray, np.ndarray]]
#: ``after_batch(jobs, probabilities, token_counts, inference_seconds, answered_at)``: called
#: in the worker after each model call; ``answered_at`` is the ``time.perf_counter()`` of the
#: answers.
AfterBatchFn = Callable[[Sequence["Job"], Sequence[float], Sequence[int], float, float], None]
#: ``observe(stage, seconds)``: the time a tweet or a batch spent in one stage (see
#: :data:`STAGES`).
ObserveFn = Callable[[str, float], None]
#: The stages of a prediction inside the service, in order: ``queue`` (per tweet: from its
#: request to its batch being taken, batch formation included), ``dispatch`` (the batch's
#: hand-over to the model thread), ``tokenize`` and ``model`` (per batch, when ``predict``
#: reports them, as ``Backend.score`` does), ``answer`` (the hop back to the event loop that
#: resolves the requests) and ``bookkeeping`` (``after_batch``: metrics, request log).
STAGES = ("queue", "dispatch", "tokenize", "model", "answer", "bookkeeping")


class BatcherClosed(RuntimeError):
    """The batcher is shutting down and takes no new jobs."""


class BatcherOverloaded(RuntimeError):
    """Too many tweets are waiting for the model."""


@dataclass(eq=False)
class Job:
    """One tweet waiting for its probability.

    Args:
        text: Raw tweet text.
        keyword: Raw keyword, ``None`` when absent.
        received: ``time.perf_counter()`` when its request arrived (for the logged latency).
        future: Resolved with the probability (a float) or the model's exception.
        logged: A prediction to record (metrics, request log); ``False`` for the variants an
            explanation scores.
        taken: ``time.perf_counter()`` when its micro-batch was taken from the queue.
        prediction_id: The id the request log records it under (the service's answer gives
            it, for ``POST /feedback``); ``None``: none.
    """

    text: str
    keyword: str | None
    received: float
    future: asyncio.Future[float] = field(repr=False)
    logged: bool = True
    taken: float = 0.0
    prediction_id: str | None = None


class MicroBatcher:
    """Groups jobs into micro-batches and runs ``predict`` on them in one worker thread.

    Args:
        predict: The model call; gets the texts and keywords of one micro-batch and returns
            their probabilities and token counts.
        max_batch_size: Most jobs per model call.
        max_wait_ms: Longest the first job of a batch waits for others while the worker idles.
        max_queue: Most jobs waiting; :meth:`submit` raises :class:`BatcherOverloaded` beyond.
        max_queue_ms: ``> 0``: :meth:`submit` also raises :class:`BatcherOverloaded` while the
            oldest waiting job has waited longer than this, in milliseconds (sheds load by
            queueing time, whatever the model's speed); 0: off.
        after_batch: Optional bookkeeping per batch (runs in the worker, errors are logged).
        observe: Optional ``observe(stage, seconds)`` of every stage in :data:`STAGES`
            (the service's Prometheus histogram).
    """

    def __init__(
        self,
        predict: PredictFn,
        max_batch_size: int = 32,
        max_wait_ms: float = 2.0,
        max_queue: int = 4096,
        max_queue_ms: float = 0.0,
        after_batch: AfterBatchFn | None = None,
        observe: ObserveFn | None = None,
    ) -> None:
        if max_batch_size < 1 or max_queue < 1 or max_wait_ms < 0 or max_queue_ms < 0:
            raise ValueError(
                "max_batch_size and max_queue must be >= 1, max_wait_ms and max_queue_ms >= 0"
            )
        self._predict = predict
        self._after_batch = after_batch
        self._observe = observe or (lambda stage, seconds: None)
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.max_queue_wait = max_queue_ms / 1000.0
        self._pending: deque[Job] = deque()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._full: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        """Start the collector task on the running event loop."""
        if self._task is not None:
            raise RuntimeError("batcher already started")
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._full = asyncio.Event()
        self._task = self._loop.create_task(self._collect(), name="micro-batcher")

    @property
    def pending(self) -> int:
        """Jobs waiting for a model call."""
        return len(self._pending)

    def submit(
        self,
        texts: Sequence[str],
        keywords: Sequence[str | None],
        logged: bool = True,
        ids: Sequence[str] | None = None,
    ) -> list[Job]:
        """Queue tweets; await ``asyncio.gather(*(job.future for job in jobs))`` for results
        (``ids``: each tweet's prediction id, see :class:`Job`).

        Raises:
            BatcherClosed: not started, or closing.
            BatcherOverloaded: the queue cannot take ``len(texts)`` more jobs.
        """
        if self._closing or self._loop is None:
            raise BatcherClosed("the model is not serving (starting up or shutting down)")
        if len(self._pending) + len(texts) > self.max_queue:
            raise BatcherOverloaded(f"more than {self.max_queue} tweets are waiting for the model")
        received = time.perf_counter()
        if self.max_queue_wait and self._pending:
            waited = received - self._pending[0].received
            if waited > self.max_queue_wait:
                raise BatcherOverloaded(
                    f"tweets have waited {waited * 1000:.0f} ms for the model (more than "
                    f"{self.max_queue_wait * 1000:g} ms)"
                )
        create_future = self._loop.create_future
        jobs = [
            Job(text, keyword, received, create_future(), logged, prediction_id=prediction_id)
            for text, keyword, prediction_id in zip(
                texts, keywords, ids or [None] * len(texts), strict=True
            )
        ]
        self._pending.extend(jobs)
        self._wakeup.set()
        if len(self._pending) >= self.max_batch_size:
            self._full.set()
        return jobs

    async def predict(
        self,
        texts: Sequence[str],
        keywords: Sequence[str | None],
        logged: bool = True,
        ids: Sequence[str] | None = None,
    ) -> list[float]:
        """Probabilities of the tweets, computed in micro-batches with other requests
        (``logged``, ``ids``: see :class:`Job`)."""
        jobs = self.submit(texts, keywords, logged, ids)
        if len(jobs) == 1:
            return [await jobs[0].future]
        return list(await asyncio.gather(*(job.future for job in jobs)))

    def _take(self) -> list[Job]:
        size = min(self.max_batch_size, len(self._pending))
        batch = [self._pending.popleft() for _ in range(size)]
        taken = time.perf_counter()
        for job in batch:
            job.taken = taken
        if len(self._pending) < self.max_batch_size:
            self._full.clear()
        return [job for job in batch if not job.future.done()]  # drop cancelled requests

    async def _collect(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if self.max_wait > 0 and len(self._pending) < self.max_batch_size:
                waited = time.perf_counter() - self._pending[0].received
                if waited < self.max_wait and not self._closing:
                    with suppress(TimeoutError):
                        await asyncio.wait_for(self._full.wait(), self.max_wait - waited)
            batch = self._take()
            if batch:
                await self._run(batch)

    async def _run(self, batch: list[Job]) -> None:
        """Hand ``batch`` to the worker; return once its futures are resolved."""
        delivered = self._loop.create_future()
        self._executor.submit(self._work, batch, delivered)
        await delivered

    def _work(self, batch: list[Job], delivered: asyncio.Future[None]) -> None:
        """In the worker: the model call, the answers (one hop back to the event loop), then
        the bookkeeping, which so adds no latency."""
        texts = [job.text for job in batch]
        keywords = [job.keyword for job in batch]
        start = time.perf_counter()
        self._observe("dispatch", start - batch[0].taken)
        for job in batch:
            self._observe("queue", job.taken - job.received)
        try:
            scores = self._predict(texts, keywords)
            probabilities, token_counts = scores[0], scores[1]
            values = np.asarray(probabilities, dtype=np.float64).reshape(-1).tolist()
            tokens = np.asarray(token_counts, dtype=np.int64).reshape(-1).tolist()
            if not len(values) == len(tokens) == len(batch):
                raise RuntimeError(f"model returned {len(values)} values for {len(batch)} tweets")
        except Exception as err:
            logger.exception("model call failed on a batch of %d", len(batch))
            self._loop.call_soon_threadsafe(_fail, batch, err, delivered)
            return
        answered = time.perf_counter()
        self._loop.call_soon_threadsafe(self._answer, batch, values, delivered, answered)
        for stage, reported in (("tokenize", "encode_seconds"), ("model", "model_seconds")):
            seconds = getattr(scores, reported, None)
            if seconds is not None:
                self._observe(stage, seconds)
        if self._after_batch is not None:
            try:
                self._after_batch(batch, values, tokens, answered - start, answered)
            except Exception:
                logger.exception("after-batch bookkeeping failed")
            self._observe("bookkeeping", time.perf_counter() - answered)

    def _answer(
        self,
        batch: list[Job],
        values: list[float],
        delivered: asyncio.Future[None],
        answered: float,
    ) -> None:
        """On the event loop: resolve the jobs still waiting (a cancelled request's is done)."""
        for job, probability in zip(batch, values, strict=True):
            if not job.future.done():
                job.future.set_result(probability)
        delivered.set_result(None)
        self._observe("answer", time.perf_counter() - answered)

    def wait_for_bookkeeping(self) -> None:
        """Block until the worker has finished what it was handed (``after_batch`` included).

        Call from a thread other than the event loop's, e.g. before reading the request log.
        """
        self._executor.submit(lambda: None).result()

    async def close(self) -> None:
        """Refuse new jobs, answer every queued one, then stop the worker thread."""
        self._closing = True
        if self._task is not None:
            self._wakeup.set()
            self._full.set()
            await self._task
        self._executor.shutdown(wait=True)


def _fail(batch: list[Job], err: Exception, delivered: asyncio.Future[None]) -> None:
    """On the event loop: fail the jobs still waiting with the model's exception."""
    for job in batch:
        if not job.future.done():
            job.future.set_exception(err)
    delivered.set_result(None)
