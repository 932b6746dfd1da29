"""The FastAPI app factory and its lifespan (bundle, history store, batcher, refiner)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from models_export.index import set_threads
from serving.batcher import MicroBatcher
from serving.clients.embedded_redis import EmbeddedRedis
from serving.clients.history_cache import HistoryCache, InvalidationListener
from serving.clients.history_store import KEY_PREFIX, HistoryStore, connect
from serving.errors import BodyTooLarge, install_error_handlers
from serving.holder import ModelHolder
from serving.metrics import Metrics
from serving.recommend import Recommender
from serving.refine import build_refiner
from serving.refine.ranker_card import ranker_mismatch
from serving.routes import include_routes
from serving.routes.demo import include_demo
from serving.routes.docs import include_docs
from serving.settings import Settings

log = logging.getLogger(__name__)

HISTORY_LEN_PER_MAX_LEN = 4  # per-user list cap when INTENTREC_HISTORY_STORE_LEN is unset


async def _watch_store(app: FastAPI) -> None:
    """Restart our own redis-server if it died; while the breaker is open, probe the store."""
    state = app.state
    while True:
        await asyncio.sleep(state.settings.redis_retry_s / 2)
        embedded = state.embedded
        if embedded is not None and embedded.process is not None and not embedded.running():
            try:
                await asyncio.to_thread(embedded.ensure_running)
                log.warning("embedded redis-server had stopped; restarted it")
            except Exception:
                log.exception("could not restart the embedded redis-server")
        if not state.store.available:
            await state.store.probe()


def _history_cache_listener(
    settings: Settings, redis, metrics: Metrics
) -> InvalidationListener | None:
    """The history cache and the listener that keeps it coherent; None when turned off."""
    if settings.history_cache_size == 0:
        return None
    return InvalidationListener.for_client(
        redis,
        KEY_PREFIX,
        HistoryCache(settings.history_cache_size, settings.history_cache_ttl_s, metrics),
        retry_s=settings.redis_retry_s,
        connect_timeout_s=settings.redis_write_timeout_ms / 1000.0,
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = app.state
    settings: Settings = state.settings
    state.embedded = None
    # Each resource's clean-up is registered as soon as it exists, so that a start-up that
    # fails half-way (a bad bundle, a missing CUDA build) stops what it had started: an
    # embedded redis-server left running would be adopted, and never stopped, by the next start.
    async with contextlib.AsyncExitStack() as started:
        started.callback(state.metrics.mark_process_dead)
        if settings.redis_url is None:
            state.embedded = EmbeddedRedis(settings.data_dir, settings.redis_fsync)
            started.push_async_callback(asyncio.to_thread, state.embedded.stop)
            url = await asyncio.to_thread(state.embedded.start)
        else:
            url = settings.redis_url
        await state.holder.reload()
        model = state.holder.current
        if settings.refine.refine_ranker_card is not None:
            mismatch = ranker_mismatch(settings.refine.refine_ranker_card, model.version)
            if mismatch:
                log.warning(mismatch)
        redis = connect(url, settings.redis_write_timeout_ms, settings.redis_pool_size)
        listener = _history_cache_listener(settings, redis, state.metrics)
        state.store = HistoryStore(
            redis,
            max_len=settings.history_store_len or HISTORY_LEN_PER_MAX_LEN * model.max_len,
            event_ttl_s=settings.event_id_ttl_s,
            timeout_ms=settings.redis_timeout_ms,
            write_timeout_ms=settings.redis_write_timeout_ms,
            retry_s=settings.redis_retry_s,
            metrics=state.metrics,
            failures_to_open=settings.redis_failures_to_open,
            cache=listener.cache if listener is not None else None,
        )
        started.push_async_callback(state.store.aclose)
        # A store down at start degrades, it does not stop the service.
        if await state.store.probe():
            await state.store.open_connections(settings.redis_write_timeout_ms / 1000.0)
        set_threads(1)  # inline encodes run on this thread: no OpenMP team for a few queries
        batcher = MicroBatcher(
            settings.batch_max_size,
            settings.batch_max_wait_ms,
            state.metrics,
            inline_max_ms=settings.batch_inline_max_ms,
        )
        batcher.start()
        started.push_async_callback(batcher.close)
        await batcher.warm_up(model)
        state.holder.warm_up = batcher.warm_up
        refiner = build_refiner(
            settings.refine, redis, settings.refine.lift_file(settings.data_dir)
        )
        if refiner is not None:
            started.push_async_callback(refiner.aclose)
        state.recommender = Recommender(
            settings, state.metrics, state.holder, batcher, state.store, refiner
        )
        # What start-up built lives as long as the process. Frozen, it is out of the cyclic
        # collector's sight: a full collection no longer walks its ~100k objects, a pause of ~75 ms
        # on the event loop here that timed out Redis reads under load and opened the breaker.
        gc.collect()
        gc.freeze()
        _start_task(started, _watch_store(app), "store-watch")
        if listener is not None:
            _start_task(started, listener.run(), "history-cache-invalidations")
        if settings.watch_bundle:
            _start_task(started, state.holder.watch(), "bundle-watch")
        yield


def _start_task(
    started: contextlib.AsyncExitStack, work: Coroutine[Any, Any, None], name: str
) -> None:
    """A background task for the process's life, cancelled (and awaited) on shutdown."""
    task = asyncio.create_task(work, name=name)

    async def cancel() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    started.push_async_callback(cancel)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(
        title="intentrec",
        version="0.1.0",
        summary="Sequential recommendations: ONNX encoder, FAISS retrieval, LLM refine.",
        lifespan=lifespan,
        # Swagger UI comes from a package (serving/routes/docs.py); ReDoc would load from a CDN.
        docs_url=None,
        redoc_url=None,
        telemetry=None
        if settings.fastapi_telemetry
        else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.holder = ModelHolder(settings, app.state.metrics)
    app.state.store = None
    install_error_handlers(app)
    include_routes(app)
    include_docs(app)
    if settings.demo:
        include_demo(app)
    app.add_middleware(BodyTooLarge, max_bytes=settings.max_body_bytes)
    return app
