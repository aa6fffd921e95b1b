"""``wanwu bench tags``: how often the tags wanwu shows are right, and how many photos get one.

On a labelled folder (``<wnid>_*.JPEG`` or wnid sub-folders, as ``wanwu bench accuracy`` reads),
the full softmax of every photo, then for each way of choosing tags:

- precision: % of the tags shown that are right (a class tag is right when it is the photo's
  class, a group tag when the group contains it);
- coverage: % of photos with at least one right tag;
- specific: % of the tags that name one class (not a group).

Ways: a flat threshold on each class's probability (what wanwu did before the policy: every
class above ``--min-score``), and the back-off policy of ``wanwu.tag_policy`` at thresholds t,
with temperature scaling (T fitted by log-likelihood) and horizontal-flip averaging. Choosing t
on the photos you report is tuning on the test set, so the chosen rows are cross-validated: t
(and T) are fitted on one half of the photos and measured on the other, both ways round.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..imaging import IMAGE_EXTENSIONS
from ..labels import imagenet_classes, resolve_group
from ..tag_policy import STORED_TOP_K, Policy, policy, sensitive_wnids, tempered
from .accuracy import labeled_photos, prepare_inputs

TARGET_PRECISION = 95.0
FLAT = (0.1, 0.3, 0.5, 0.7, 0.9)
BACKOFF = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
GRID = tuple(round(0.3 + 0.025 * i, 3) for i in range(27))  # 0.3 ... 0.95, for fitting t
TEMPERATURES = tuple(round(0.5 + 0.1 * i, 2) for i in range(26))  # 0.5 ... 3.0
FULL = 100  # "all classes": the top 100 (the rest of a softmax sums to well under 1%)


@dataclass
class Softmaxes:
    """Logits of every photo (and of its mirror image), with the photos' classes."""

    wnids: list[str]
    logits: np.ndarray  # (N, 1000)
    flipped: np.ndarray  # (N, 1000)


def probabilities(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def collect(
    data: Path, model: str, precision: str, *, limit: int | None = None, cache: Path | None = None, progress=True
) -> Softmaxes:
    """Run the model once over ``data`` (and the mirrored photos)."""
    photos = labeled_photos(data, limit)
    logits, flipped = logits_of([p.path for p in photos], model, precision, cache=cache, progress=progress)
    return Softmaxes([p.wnid for p in photos], logits, flipped)


def logits_of(
    paths: list[Path], model: str, precision: str, *, cache: Path | None = None, progress=True
) -> tuple[np.ndarray, np.ndarray]:
    """Logits of each photo and of its mirror image. ``cache``: a folder where they are kept, so
    a second run (another table, another threshold) needs no inference."""
    key = hashlib.sha256(f"{model}/{precision}/{[str(p) for p in paths]}".encode()).hexdigest()[:16]
    file = cache / f"tags-{model}-{precision}-{key}.npz" if cache else None
    if file is not None and file.is_file():
        saved = np.load(file)
        return saved["logits"], saved["flipped"]
    from ..pipeline import Classifier

    clf = Classifier(model, precision=precision)
    inputs = prepare_inputs(clf, paths, progress, desc=f"{model} {precision}")
    logits = np.concatenate([clf.infer(inputs[i : i + 16]) for i in range(0, len(inputs), 16)])
    mirrored = np.ascontiguousarray(inputs[:, :, :, ::-1])
    flipped = np.concatenate([clf.infer(mirrored[i : i + 16]) for i in range(0, len(mirrored), 16)])
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(file, logits=logits, flipped=flipped)
    return logits, flipped


def top(probs: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
    """Each photo's top ``k`` (wnid, probability): what the catalogue stores."""
    classes = imagenet_classes()
    order = np.argsort(-probs, axis=1)[:, :k]
    return [[(classes[i].wnid, float(row[i])) for i in idx] for row, idx in zip(probs, order)]


Chooser = Callable[[list[tuple[str, float]]], list[tuple[str, ...]]]  # top-k -> tags (member wnids)


def flat(threshold: float) -> Chooser:
    return lambda scores: [(w,) for w, p in scores if p >= threshold]


def backoff(pol: Policy, faces_found: bool = False) -> Chooser:
    def choose(scores: list[tuple[str, float]]) -> list[tuple[str, ...]]:
        tag = pol.decide(scores, faces_found=faces_found)
        return [tag.members] if tag else []

    return choose


def score(tops: Sequence[list[tuple[str, float]]], truth: Sequence[str], choose: Chooser) -> dict:
    shown = right = covered = single = 0
    for scores, wnid in zip(tops, truth):
        tags = choose(scores)
        hits = sum(wnid in t for t in tags)
        shown += len(tags)
        right += hits
        covered += hits > 0
        single += sum(len(t) == 1 for t in tags)
    n = len(truth)
    return {
        "photos": n,
        "tags": shown,
        "precision": 100.0 * right / shown if shown else float("nan"),
        "coverage": 100.0 * covered / n if n else float("nan"),
        "specific": 100.0 * single / shown if shown else float("nan"),
    }


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature with the best log-likelihood of the true classes (grid search)."""
    nll = [-np.log(probabilities(logits, t)[np.arange(len(labels)), labels] + 1e-12).mean() for t in TEMPERATURES]
    return TEMPERATURES[int(np.argmin(nll))]


def fit_threshold(tops, truth, make: Callable[[float], Chooser]) -> float:
    """The threshold with the most coverage at >= TARGET_PRECISION (else the most precise)."""
    results = [(t, score(tops, truth, make(t))) for t in GRID]
    good = [(r["coverage"], t) for t, r in results if r["precision"] >= TARGET_PRECISION]
    if good:
        return max(good)[1]
    return max((r["precision"] if r["tags"] else 0.0, t) for t, r in results)[1]


@dataclass
class Variant:
    name: str
    flip: bool
    calibrate: bool


VARIANTS = (
    Variant("back-off", False, False),
    Variant("back-off + temperature", False, True),
    Variant("back-off + flip", True, False),
    Variant("back-off + flip + temperature", True, True),
)


def _probs(s: Softmaxes, rows: np.ndarray, flip: bool) -> np.ndarray:
    p = probabilities(s.logits[rows])
    return (p + probabilities(s.flipped[rows])) / 2 if flip else p


def fit(s: Softmaxes, rows: np.ndarray, v: Variant, bar: float, k: int = STORED_TOP_K) -> Policy:
    """The policy (t, and T when ``v.calibrate``) fitted on the photos ``rows``."""
    labels = np.array([imagenet_index(w) for w in s.wnids])
    temp = fit_temperature(s.logits[rows], labels[rows]) if v.calibrate else 1.0
    truth = [w for w, r in zip(s.wnids, rows) if r]
    tops = top(_probs(s, rows, v.flip), k)
    t = fit_threshold(tops, truth, lambda t: backoff(Policy(t, max(bar, t), temp)))
    return Policy(t, max(bar, t), temp)


def cross_validated(s: Softmaxes, v: Variant, bar: float, k: int = STORED_TOP_K) -> tuple[dict, list[Policy]]:
    """Fit on one half, measure on the other, both ways; the held-out results pooled."""
    n = len(s.wnids)
    halves = (np.arange(n) % 2 == 0, np.arange(n) % 2 == 1)
    pooled, fitted = [], []
    for fit_rows, test_rows in (halves, halves[::-1]):
        pol = fit(s, fit_rows, v, bar, k)
        truth = [w for w, r in zip(s.wnids, test_rows) if r]
        pooled.append(score(top(_probs(s, test_rows, v.flip), k), truth, backoff(pol)))
        fitted.append(pol)
    return _pool(pooled), fitted


def _pool(parts: list[dict]) -> dict:
    n = sum(p["photos"] for p in parts)
    tags = sum(p["tags"] for p in parts)

    def weighted(key: str, by: str) -> float:
        total = sum(p[by] for p in parts)
        return sum(p[key] * p[by] for p in parts if p[by]) / total if total else float("nan")

    return {
        "photos": n,
        "tags": tags,
        "precision": weighted("precision", "tags"),
        "coverage": weighted("coverage", "photos"),
        "specific": weighted("specific", "tags"),
    }


def imagenet_index(wnid: str) -> int:
    from ..labels import wnid_to_index

    return wnid_to_index()[wnid]


def _row(name: str, r: dict, note: str = "") -> str:
    def pct(x: float) -> str:
        return "–" if x != x else f"{x:.1f}"

    return f"| {name} | {pct(r['precision'])} | {pct(r['coverage'])} | {pct(r['specific'])} | {r['tags']} | {note} |"


HEADER = "| tags chosen by | precision % | coverage % | specific % | tags | note |\n|---|---:|---:|---:|---:|---|"


def report(s: Softmaxes, model: str, precision: str, people_probs: np.ndarray | None = None) -> str:
    """The Markdown table for one model and precision."""
    truth = s.wnids
    p1 = probabilities(s.logits)
    full, stored = top(p1, FULL), top(p1, STORED_TOP_K)
    pol = policy(model, precision)
    lines = [
        f"**{model}, {precision}** ({len(truth)} photos; shipped calibration: T = {pol.temperature}, "
        f"t = {pol.confidence}, sensitive bar {pol.sensitive_bar})",
        "",
        HEADER,
    ]
    lines.append(_row("flat >= 0.1 of the top 5 (before)", score(top(p1, 5), truth, flat(0.1)), "the old default"))
    for t in FLAT[1:]:
        lines.append(_row(f"flat >= {t}", score(full, truth, flat(t))))
    for t in BACKOFF:
        lines.append(_row(f"back-off t = {t}", score(stored, truth, backoff(Policy(t, max(pol.sensitive_bar, t))))))
    for v in VARIANTS:
        r, fitted = cross_validated(s, v, pol.sensitive_bar)
        note = "; ".join(f"t={f.confidence}" + (f", T={f.temperature}" if v.calibrate else "") for f in fitted)
        lines.append(_row(f"{v.name}, fitted on the other half", r, f"held out; fitted {note}"))
    lines.append(_row("the shipped policy", score(stored, truth, backoff(pol)), "all photos (fitted on them)"))
    everything = fit(s, np.ones(len(truth), bool), VARIANTS[1], pol.sensitive_bar)
    lines += [
        "",
        f"Fitted on all {len(truth)} photos (back-off + temperature): T = {everything.temperature}, "
        f"t = {everything.confidence}.",
        "",
        _stored_k(p1, truth, pol),
        "",
        _sensitive(p1, truth, pol, people_probs),
    ]
    return "\n".join(lines)


def _stored_k(p: np.ndarray, truth: list[str], pol: Policy) -> str:
    parts = []
    for k in (5, STORED_TOP_K, 20, FULL):
        r = score(top(p, k), truth, backoff(pol))
        parts.append(f"top {k}: {r['precision']:.1f}% / {r['coverage']:.1f}%")
    return "Classes kept per photo (policy precision / coverage): " + ", ".join(parts) + "."


def _sensitive(p: np.ndarray, truth: list[str], pol: Policy, people_probs: np.ndarray | None) -> str:
    """Primate recall with and without the sensitive bar, and the highest (tempered) probability a
    sensitive class reached on a photo that does not show it: the bar must stay above it."""
    primates = set(resolve_group("primate").wnids)
    sensitive = sensitive_wnids()
    rows = [i for i, w in enumerate(truth) if w in primates]
    out = [f"{len(sensitive)} sensitive classes."]
    if rows:
        tops = top(p[rows], STORED_TOP_K)
        wn = [truth[i] for i in rows]
        plain = Policy(pol.confidence, pol.confidence, pol.temperature)  # no sensitive bar: before issue 27
        before, after = score(tops, wn, backoff(plain)), score(tops, wn, backoff(pol))
        out.append(
            f"Primate photos ({len(rows)}): right tag without the sensitive bar {before['coverage']:.0f}%, "
            f"with it {after['coverage']:.0f}%; their top-1 (tempered): "
            + ", ".join(f"{w} {_tempered_top1(t, pol):.2f}" for w, t in zip(wn, tops))
            + "."
        )
    else:
        out.append("No primate photos in this folder: primate recall not measured.")
    worst = _worst_sensitive(top(p, STORED_TOP_K), truth, pol)
    out.append(f"Highest sensitive-class probability on a photo of another class: {worst}.")
    if people_probs is not None:
        out.append(
            "On the people photos: " + _worst_sensitive(top(people_probs, STORED_TOP_K), [""] * len(people_probs), pol)
        )
    return " ".join(out)


def _tempered_top1(scores: list[tuple[str, float]], pol: Policy) -> float:
    return max(p for _, p in tempered(scores, pol.temperature))


def _worst_sensitive(tops: list[list[tuple[str, float]]], truth: list[str], pol: Policy) -> str:
    sensitive = sensitive_wnids()
    worst = (0.0, "", "")
    for scores, wnid in zip(tops, truth):
        for w, q in tempered(scores, pol.temperature):
            if w in sensitive and w != wnid and q > worst[0]:
                worst = (q, w, wnid)
    if not worst[1]:
        return "none in any top 10"
    return f"{worst[0]:.2f} ({label_of(worst[1])} on {worst[2] or 'a people photo'})"


def label_of(wnid: str) -> str:
    from ..labels import wnid_to_index

    return imagenet_classes()[wnid_to_index()[wnid]].label


def people(names: list[str], probs: np.ndarray, pol: Policy) -> str:
    """Each people photo's tags before (flat >= 0.1 of the top 5) and with the policy (no faces
    hook): a person judges which are wrong."""
    lines = ["| photo | before (>= 10% of the top 5) | the policy |", "|---|---|---|"]
    for name, scores in zip(names, top(probs, STORED_TOP_K)):
        before = ", ".join(f"{label_of(w)} {p:.0%}" for w, p in scores[:5] if p >= 0.1) or "–"
        tag = pol.decide(scores)
        after = f"{tag.label()} {tag.score:.0%}" if tag else "–"
        lines.append(f"| {name} | {before} | {after} |")
    return "\n".join(lines)


def run(
    data: Path, models: list[str], precisions: list[str], *, limit=None, cache=None, people_dir=None, progress=True
) -> str:
    out = [
        f"## Tags: precision and coverage on {data.name}",
        "",
        "precision: % of the tags shown that are right; coverage: % of photos with a right tag; specific: % of the "
        f"tags naming one class, not a group. Back-off rows over the top {STORED_TOP_K} classes (what the catalogue "
        "keeps); flat rows over all classes. Fitted rows: t (and the temperature T) chosen on one half of the photos "
        f"(most coverage at >= {TARGET_PRECISION:.0f}% precision), measured on the other half, both ways round.",
        "",
    ]
    faces = sorted(p for p in people_dir.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS) if people_dir else []
    for model in models:
        for precision in precisions:
            s = collect(data, model, precision, limit=limit, cache=cache, progress=progress)
            people_probs = None
            if faces:
                people_probs = probabilities(logits_of(faces, model, precision, cache=cache, progress=progress)[0])
            out += [report(s, model, precision, people_probs), ""]
            if people_probs is not None and people_dir is not None:
                names = [str(p.relative_to(people_dir)) for p in faces]
                out += [
                    f"People photos ({people_dir.name}), {model} {precision}:",
                    "",
                    people(names, people_probs, policy(model, precision)),
                    "",
                ]
    print(f"wanwu bench tags: {len(models) * len(precisions)} variant(s) measured", file=sys.stderr)
    return "\n".join(out)
