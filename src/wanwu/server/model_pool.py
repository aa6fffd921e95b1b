"""``ModelPool``: one ``Classifier`` per model name, loaded (and warmed up) on first use and
kept for the life of the process, or, with ``--max-models N``, until N others were used more
recently (the default model is never unloaded). Loading is blocking: call it from a worker thread."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections import OrderedDict
from typing import Callable

from PIL import Image

from ..engines import get_engine
from ..errors import ModelUnavailableError
from ..models import ModelSpec, get_spec, list_specs
from ..models.weights import availability, describe, public_reason
from ..pipeline import Classifier
from .config import ServerConfig
from .memory import release_freed_memory

log = logging.getLogger("wanwu.server")


def _warmup_image() -> bytes:
    """A small PNG that walks the whole pipeline once (decoder plugins, ORT allocations)."""
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (120, 130, 140)).save(buf, "PNG")
    return buf.getvalue()


class ModelPool:
    """Classifiers by model name, built with the server's engine, precision, threads and
    pixel limit. ``config.weights`` applies to ``config.model`` only."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self._loaded: dict[str, Classifier] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._used: OrderedDict[str, None] = OrderedDict()  # least recently used first
        self._unload_listeners: list[Callable[[str], None]] = []

    def on_unload(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(name)`` after a model is unloaded (to drop what refers to it)."""
        self._unload_listeners.append(listener)

    def _touch(self, name: str) -> None:
        with self._guard:
            self._used[name] = None
            self._used.move_to_end(name)

    def _make_room(self, keep: str) -> None:
        """Unload least recently used models (never ``keep`` or the default) down to ``max_models``.
        Requests already holding one finish with it; its memory goes when they are done."""
        limit = self.config.max_models
        if not limit:
            return
        unloaded = []
        with self._guard:
            while len(self._loaded) > limit:
                victim = next((n for n in self._used if n in self._loaded and n not in (keep, self.config.model)), None)
                if victim is None:
                    break
                del self._loaded[victim]
                self._used.pop(victim, None)
                unloaded.append(victim)
        for name in unloaded:
            log.info("unloaded %s (--max-models %d)", name, limit)
            for listener in self._unload_listeners:
                listener(name)

    def peek(self, name: str) -> Classifier | None:
        """The classifier if already loaded (never blocks)."""
        clf = self._loaded.get(name)
        if clf is not None:
            self._touch(name)
        return clf

    def is_loaded(self, name: str) -> bool:
        return name in self._loaded

    def loaded_names(self) -> list[str]:
        return list(self._loaded)

    def get(self, name: str) -> Classifier:
        """Load ``name`` once (other threads asking meanwhile wait for the same load).
        Raises ``UnknownModelError``, ``ModelUnavailableError`` or ``WeightsError``."""
        clf = self.peek(name)
        if clf is not None:
            return clf
        spec = get_spec(name)
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            clf = self._loaded.get(name)
            if clf is None:
                clf = self._load(spec)
                self._loaded[name] = clf
        self._touch(name)
        self._make_room(keep=name)
        return clf

    def _load(self, spec: ModelSpec) -> Classifier:
        cfg = self.config
        t0 = time.perf_counter()
        try:
            clf = Classifier(
                spec.name,
                cfg.engine,
                weights=cfg.weights if spec.name == cfg.model else None,
                precision=cfg.precision,
                threads=cfg.threads,
                max_pixels=cfg.max_pixels,
                engine_options=dict(get_engine(cfg.engine).server_options),
            )
        except ModelUnavailableError as exc:  # the operator's log gets the paths; the client does not
            log.warning("%s", exc.message)
            raise ModelUnavailableError(f"{spec.name} is not available: {public_reason(spec)}") from None
        warm = clf.classify_one(_warmup_image(), top_k=1, name="warm-up")
        if warm.error is not None:  # pragma: no cover - our own PNG
            raise warm.error
        release_freed_memory()
        log.info(
            "loaded %s (%s, %s, weights from %s) in %.2f s",
            spec.name,
            clf.engine.name,
            clf.engine.precision,
            clf.weights.source,
            time.perf_counter() - t0,
        )
        return clf

    def availability(self, spec: ModelSpec) -> tuple[bool, str | None]:
        """(available, reason): loaded or explicitly given weights count as available."""
        if spec.name in self._loaded or (spec.name == self.config.model and self.config.weights):
            return True, None
        return availability(spec)

    def describe(self) -> list[dict]:
        """The registry as the JSON API shows it (reasons without this machine's paths)."""
        out = []
        for spec in list_specs():
            available, _ = self.availability(spec)
            facts = describe(spec, available, public_reason(spec))
            out.append({**facts, "loaded": spec.name in self._loaded})
        return out
