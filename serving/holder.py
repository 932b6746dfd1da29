"""The current model, swapped atomically on reload; optional watching of `bundles/current`."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from models_export.bundle import BundleError, resolve_bundle
from serving.metrics import Metrics
from serving.model import ServedModel, load_model
from serving.settings import Settings

log = logging.getLogger(__name__)


class ModelHolder:
    """Requests read `current` once and keep that object: a swap never touches their model."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self._current: ServedModel | None = None
        self._lock = asyncio.Lock()
        # Set once the batcher runs: a new model's first batch goes through it before the swap.
        self.warm_up: Callable[[ServedModel], Awaitable[None]] | None = None

    @property
    def current(self) -> ServedModel:
        if self._current is None:
            raise RuntimeError("no bundle loaded")
        return self._current

    @property
    def loaded(self) -> bool:
        return self._current is not None

    async def reload(self) -> tuple[ServedModel | None, ServedModel]:
        """Load what `bundle_dir` points at now, warm it up, then swap; returns (old, new).

        On failure the old model keeps serving and the error propagates.
        """
        async with self._lock:
            try:
                model = await asyncio.to_thread(load_model, self.settings.bundle_dir, self.settings)
            except Exception:
                self.metrics.bundle_reloads.labels(outcome="failed").inc()
                raise
            if self.warm_up is not None:
                await self.warm_up(model)
            old, self._current = self._current, model
            # Long-lived like the start-up objects (see the app's lifespan): out of the cyclic
            # collector's sight. The old model is freed by reference counting once unused.
            gc.freeze()
            self.metrics.set_bundle(model.version, model.device.encoder, model.device.index)
            self.metrics.bundle_reloads.labels(outcome="ok").inc()
            log.info(
                "serving bundle %s from %s: %s", model.version, model.root, model.device.describe()
            )
            return old, model

    def _target(self) -> Path | None:
        try:
            return resolve_bundle(self.settings.bundle_dir)
        except BundleError:
            return None  # mid-switch or removed: keep serving what is loaded

    async def watch(self) -> None:
        """Reload when `bundle_dir` (e.g. `bundles/current`) resolves to another directory."""
        while True:
            await asyncio.sleep(self.settings.watch_interval_s)
            target = await asyncio.to_thread(self._target)
            if target is None or self._current is None or target == self._current.root:
                continue
            try:
                await self.reload()
            except Exception:
                log.exception("bundle reload from %s failed; still serving the old one", target)
