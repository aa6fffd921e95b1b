"""The envelope every JSON answer with results comes in: ``wanwu classify`` and ``wanwu explain``
with ``--format json``, ``POST /api/v1/classify`` and ``POST /api/v1/explain``. It says which
model, engine and precision answered (scores are only comparable within one of each), the
language of the labels when the answer has one, then the results."""

from __future__ import annotations

from typing import Any


def envelope(clf: Any, results: list, lang: str | None = None) -> dict[str, Any]:
    """``{"model", "engine", "precision", ["lang",] "results"}`` for the answers of ``clf`` (a
    ``wanwu.Classifier``)."""
    out: dict[str, Any] = {"model": clf.model_name, "engine": clf.engine.name, "precision": clf.engine.precision}
    if lang is not None:
        out["lang"] = lang
    out["results"] = results
    return out
