"""The issue's targets, each with the measured value, the target and pass/fail. Targets that need
a section which did not run are reported as "not measured"."""

from __future__ import annotations

from .variants import Variant, baseline

DEFAULT_E2E_SPEEDUP = 5.0  # x the same model's torch eager 1-thread baseline
DEFAULT_E2E_MS = 20.0
RESNET_THROUGHPUT_SPEEDUP = 6.0
RESNET_LATENCY_SPEEDUP = 3.0
COLD_START_S = 2.0
SERVING_RSS_MB = 250.0


def _row(name: str, value, target: str, ok: bool | None, unit: str = "", note: str = "") -> dict:
    return {
        "target": name,
        "value": value,
        "unit": unit,
        "goal": target,
        "status": "not measured" if ok is None else ("pass" if ok else "FAIL"),
        "note": note,
    }


def _outside_inference(stages: dict) -> float:
    return sum(stages[s]["p50"] for s in ("decode", "preprocess", "postprocess"))


def _default_note(lat: dict, model: str, ours: dict) -> str:
    """Where the time goes, and the best variant of the default model, for the speedup target."""
    base = lat.get(baseline(model).key)
    if base is None:
        return ""
    b, o = base["stages"], ours["stages"]
    cap = b["total"]["p50"] / _outside_inference(b)
    note = (
        f"baseline {b['total']['p50']:.1f} ms = {_outside_inference(b):.1f} decode+pre/postprocess + "
        f"{b['inference']['p50']:.1f} inference; here {o['total']['p50']:.1f} = {_outside_inference(o):.1f} + "
        f"{o['inference']['p50']:.1f}; with free inference the ratio would be at most {cap:.1f}x"
    )
    others = [r for r in lat.values() if r["variant"]["model"] == model and not r["variant"]["baseline"]]
    if others:
        best = max(others, key=lambda r: r["speedup_p50"] or 0)
        v = best["variant"]
        note += (
            f"; best variant: {v['engine']} {v['precision']} {v['threads']}t "
            f"{best['stages']['total']['p50']:.1f} ms ({best['speedup_p50']:.2f}x)"
        )
    return note


def evaluate_targets(results: dict) -> list[dict]:
    d = results["default"]
    default_key = Variant(d["model"], d["engine"], d["precision"], d["threads"]).key
    default_label = f"{d['model']} ({d['engine']} {d['precision']} {d['threads']}t)"
    rows = []
    lat = results.get("latency", {}).get("results", {})
    if default_key in lat:
        r = lat[default_key]
        rows.append(
            _row(
                f"default model end-to-end p50 speedup vs torch eager 1t — {default_label}",
                r["speedup_p50"],
                f">= {DEFAULT_E2E_SPEEDUP:g}x",
                r["speedup_p50"] >= DEFAULT_E2E_SPEEDUP,
                "x",
                _default_note(lat, d["model"], r),
            )
        )
        p50 = r["stages"]["total"]["p50"]
        rows.append(
            _row(
                f"default model end-to-end p50 — {default_label}",
                p50,
                f"<= {DEFAULT_E2E_MS:g} ms",
                p50 <= DEFAULT_E2E_MS,
                "ms",
            )
        )
    else:
        rows.append(
            _row(
                "default model end-to-end p50", None, f">= {DEFAULT_E2E_SPEEDUP:g}x and <= {DEFAULT_E2E_MS:g} ms", None
            )
        )

    random_note = (
        "random weights, speed only"
        if any(m["model"] == "resnet18" and m["random_weights"] for m in results.get("models", []))
        else ""
    )
    thr = results.get("throughput", {}).get("results", {})
    cands = [
        r
        for k, r in thr.items()
        if r["variant"]["model"] == "resnet18"
        and not r["variant"]["baseline"]
        and r["variant"]["threads"] == max(results.get("throughput", {}).get("threads", [0]))
    ]
    if cands and thr.get(baseline("resnet18").key):
        best = max(cands, key=lambda r: r["best_img_s"])
        v = best["variant"]
        rows.append(
            _row(
                "ResNet-18 best throughput vs baseline img/s",
                best["speedup_best"],
                f">= {RESNET_THROUGHPUT_SPEEDUP:g}x",
                best["speedup_best"] >= RESNET_THROUGHPUT_SPEEDUP,
                "x",
                f"{v['engine']} {v['precision']} {v['threads']}t batch {best['best_batch']}: "
                f"{best['best_img_s']:.1f} img/s; {random_note}".strip("; "),
            )
        )
    else:
        rows.append(
            _row("ResNet-18 best throughput vs baseline img/s", None, f">= {RESNET_THROUGHPUT_SPEEDUP:g}x", None)
        )
    cands = [r for r in lat.values() if r["variant"]["model"] == "resnet18" and not r["variant"]["baseline"]]
    if cands:
        best = max(cands, key=lambda r: r["speedup_p50"] or 0)
        v = best["variant"]
        rows.append(
            _row(
                "ResNet-18 single-image end-to-end p50 vs baseline",
                best["speedup_p50"],
                f">= {RESNET_LATENCY_SPEEDUP:g}x",
                best["speedup_p50"] >= RESNET_LATENCY_SPEEDUP,
                "x",
                f"{v['engine']} {v['precision']} {v['threads']}t: {best['stages']['total']['p50']:.1f} ms; "
                f"{random_note}".strip("; "),
            )
        )
    else:
        rows.append(
            _row("ResNet-18 single-image end-to-end p50 vs baseline", None, f">= {RESNET_LATENCY_SPEEDUP:g}x", None)
        )

    mem = results.get("memory", {}).get("results", [])
    default_rows = [m for m in mem if m["variant"]["key"] == default_key]
    warm = next((m for m in default_rows if not m["cold_cache"]), None)
    if warm:
        rows.append(
            _row(
                f"cold start to first answer, warm ONNX cache — {default_label}",
                warm["first_answer_s"],
                f"<= {COLD_START_S:g} s",
                warm["first_answer_s"] <= COLD_START_S,
                "s",
            )
        )
        rows.append(
            _row(
                f"serving peak RSS after {warm['images']} images — {default_label}",
                warm["peak_rss_mb"],
                f"<= {SERVING_RSS_MB:g} MB",
                warm["peak_rss_mb"] <= SERVING_RSS_MB,
                "MB",
            )
        )
    else:
        rows.append(_row("cold start to first answer, warm ONNX cache", None, f"<= {COLD_START_S:g} s", None))
        rows.append(_row("serving peak RSS", None, f"<= {SERVING_RSS_MB:g} MB", None))
    return rows


def engine_comparison(results: dict, challenger: str = "openvino", incumbent: str = "onnxruntime") -> list[dict]:
    """Per model/precision/threads: the challenger engine's speed as a ratio to the incumbent's
    (>1 = challenger faster), single-image end to end p50 and best throughput."""
    rows = []

    def pairs(section: str):
        table = results.get(section, {}).get("results", {})
        for r in table.values():
            v = r["variant"]
            other = table.get(Variant(v["model"], incumbent, v["precision"], v["threads"]).key)
            if v["engine"] == challenger and other is not None:
                yield v, r, other

    for v, ours, theirs in pairs("latency"):
        a, b = ours["stages"]["total"]["p50"], theirs["stages"]["total"]["p50"]
        rows.append(
            {
                "model": v["model"],
                "precision": v["precision"],
                "threads": v["threads"],
                "measure": "single image end-to-end p50 (ms)",
                challenger: a,
                incumbent: b,
                "ratio": b / a,
            }
        )
    for v, ours, theirs in pairs("throughput"):
        a, b = ours["best_img_s"], theirs["best_img_s"]
        rows.append(
            {
                "model": v["model"],
                "precision": v["precision"],
                "threads": v["threads"],
                "measure": "best throughput (img/s)",
                challenger: a,
                incumbent: b,
                "ratio": a / b,
            }
        )
    return rows
