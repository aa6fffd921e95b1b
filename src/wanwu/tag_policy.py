"""The tag policy: which tag (if any) a person sees for a photo, from the model's top-k.

Everything that shows or writes a photo's tags (sidecars, ``wanwu search``, the gallery,
``wanwu library``, exports) and the classify verdict goes through ``Policy.decide``; the raw
top-k (``--format json``, the JSON API's ``predictions``) never does: it stays the model's answer.

The rule ("hedging", Deng et al., CVPR 2012): among the 1000 classes and the label groups of
``wanwu.labels``, the most specific one whose summed probability reaches ``confidence`` is the
photo's tag; none reaching it means no tag. A cat split 38/38/17 over three cat classes is
"cat 93%", not "Egyptian cat 38%"; a photo the model knows nothing about gets nothing.

Sensitive classes (``data/sensitive-classes.tsv``: primates, underwear, ...; issue 27) count
only where their own probability reaches the much higher ``sensitive_bar``, and never on a photo
where faces were found: below it their probability goes to no tag at all, not even "mammal".

``confidence`` is calibrated per model and precision (``data/tag-calibration.tsv``, the numbers
``wanwu bench tags`` measured: int8 moves confidences a lot with the same top-1); the one setting
``--tag-confidence`` / ``WANWU_TAG_CONFIDENCE`` replaces it for every model when given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Iterable

from .labels import LabelGroup, groups_of, imagenet_classes, label_groups, label_in, resolve_group, wnid_to_index

# How many classes the catalogue keeps per photo (``wanwu index``): enough to recompute the
# policy later without the model. On imagenet-100 the back-off policy over the top 10 decides
# as over all 1000 classes on every photo at the calibrated threshold (docs/benchmarks.md,
# "Tags"); top 5 lost group tags whose mass is spread over more than five classes.
STORED_TOP_K = 10

# For a model/precision without a calibration row: the strictest calibrated values.
FALLBACK_CONFIDENCE = 0.7
FALLBACK_SENSITIVE_BAR = 0.9


def _data(name: str) -> str:
    return resources.files("wanwu").joinpath("data", name).read_text("utf-8")


def _rows(text: str) -> list[list[str]]:
    return [line.split("\t") for line in text.splitlines() if line.strip() and not line.startswith("#")]


@lru_cache(maxsize=1)
def sensitive_wnids() -> frozenset[str]:
    """The classes of ``data/sensitive-classes.tsv`` (groups expanded to their classes)."""
    known = wnid_to_index()
    out: set[str] = set()
    for kind, key, *_why in _rows(_data("sensitive-classes.tsv")):
        if kind == "group":
            out.update(resolve_group(key).wnids)
        elif kind == "class" and key in known:
            out.add(key)
        else:
            raise RuntimeError(f"wanwu's sensitive class list is damaged ({kind} {key}); reinstall wanwu")
    return frozenset(out)


@dataclass(frozen=True)
class Calibration:
    temperature: float  # softmax temperature the probabilities are read at (< 1: sharper)
    confidence: float  # summed (tempered) probability a tag needs
    sensitive_bar: float  # (tempered) probability a sensitive class needs


FALLBACK = Calibration(1.0, FALLBACK_CONFIDENCE, FALLBACK_SENSITIVE_BAR)


@lru_cache(maxsize=1)
def _calibrations() -> dict[tuple[str, str], Calibration]:
    return {
        (model, precision): Calibration(float(temp), float(conf), float(bar))
        for model, precision, temp, conf, bar, *_measured in _rows(_data("tag-calibration.tsv"))
    }


def calibration(model: str | None, precision: str | None) -> Calibration:
    """The calibrated numbers of a model at a precision (``FALLBACK`` when not measured)."""
    return _calibrations().get((model or "", precision or ""), FALLBACK)


def tempered(scores: Iterable[tuple[str, float]], temperature: float) -> list[tuple[str, float]]:
    """Probabilities at ``temperature`` from the top-k at temperature 1 (what the catalogue keeps):
    p_i^(1/T) / sum_j p_j^(1/T). The classes not given (mass R = 1 - their sum, each below the
    smallest given p) enter the sum at their largest possible share, so a tempered probability
    is never overstated: R * p_min^(1/T - 1) for T <= 1, n * (R / n)^(1/T) for T > 1."""
    pairs = [(w, float(p)) for w, p in scores if p is not None and math.isfinite(p) and p > 0]
    if temperature == 1.0 or not pairs:
        return pairs
    a = 1.0 / temperature
    rest = max(0.0, 1.0 - sum(p for _, p in pairs))
    if a >= 1.0:
        tail = rest * min(p for _, p in pairs) ** (a - 1.0)
    else:
        n = max(1, len(wnid_to_index()) - len(pairs))
        tail = n * (rest / n) ** a
    total = sum(p**a for _, p in pairs) + tail
    return [(w, p**a / total) for w, p in pairs]


def parse_confidence(text: str) -> float | None:
    """``auto`` (or empty) -> None (calibrated per model); a number in (0, 1] otherwise."""
    clean = text.strip().lower()
    if clean in ("", "auto"):
        return None
    try:
        value = float(clean)
    except ValueError:
        raise ValueError(f"{text!r} is not a number between 0 and 1 or 'auto'") from None
    if not 0.0 < value <= 1.0 or math.isnan(value):
        raise ValueError(f"{text!r} is not between 0 (exclusive) and 1")
    return value


@cache
def broader_groups(group: LabelGroup) -> tuple[LabelGroup, ...]:
    """The groups that contain every class of ``group`` (retriever: dog, canine, pet, mammal,
    animal), narrowest first."""
    members = set(group.wnids)
    out = [g for g in label_groups() if g.key != group.key and members <= set(g.wnids)]
    return tuple(sorted(out, key=lambda g: len(g.wnids)))


@dataclass(frozen=True)
class Tag:
    """One tag the policy chose: a class (``wnid``) or a label group (``group``), and the
    probability behind it (the class's, or the sum of the group's classes)."""

    score: float
    wnid: str | None = None
    group: LabelGroup | None = None

    @property
    def members(self) -> tuple[str, ...]:
        return (self.wnid,) if self.wnid else self.group.wnids if self.group else ()

    @property
    def groups(self) -> tuple[LabelGroup, ...]:
        """The broader groups the tag belongs to, narrowest first (for keywords and facets)."""
        if self.wnid:
            return groups_of(self.wnid)
        return broader_groups(self.group) if self.group else ()

    def label(self, lang: str = "en") -> str:
        if self.group is not None:
            return label_in(self.group, lang)
        return label_in(imagenet_classes()[wnid_to_index()[self.wnid or ""]], lang)

    def matches(self, wnids: Iterable[str]) -> bool:
        """Whether a query naming ``wnids`` finds this tag: every class the tag stands for is named
        (a "retriever" tag is found by "dog" and "retriever", not by "golden retriever")."""
        wanted = set(wnids)
        return bool(wanted) and all(w in wanted for w in self.members)

    def to_dict(self, lang: str = "en") -> dict:
        """``{"wnid", "group", "label", "label_en", "label_zh", "score"}`` (one of wnid/group is None)."""
        return {
            "wnid": self.wnid,
            "group": self.group.key if self.group else None,
            "label": self.label(lang),
            "label_en": self.label("en"),
            "label_zh": self.label("zh"),
            "score": round(self.score, 6),
        }


@dataclass(frozen=True)
class Policy:
    confidence: float
    sensitive_bar: float
    temperature: float = 1.0

    def decide(self, scores: Iterable[tuple[str, float]], *, faces_found: bool = False) -> Tag | None:
        """The photo's tag from its top-k (wnid, probability) pairs as the model gave them (any
        number, any order), or None when nothing reaches ``confidence``. ``faces_found``: a
        sensitive class is never the tag nor part of one."""
        known = wnid_to_index()
        sensitive = sensitive_wnids()
        safe: dict[str, float] = {}
        touchy: dict[str, float] = {}
        for wnid, p in tempered(scores, self.temperature):
            if wnid in known:
                bucket = touchy if wnid in sensitive else safe
                bucket[wnid] = bucket.get(wnid, 0.0) + float(p)
        if faces_found:
            touchy = {}
        classes = [(p, w) for w, p in safe.items() if p >= self.confidence]
        classes += [(p, w) for w, p in touchy.items() if p >= self.confidence and p >= self.sensitive_bar]
        if classes:
            p, w = max(classes)
            return Tag(p, wnid=w)
        safe_sum: dict[str, float] = {}
        touchy_sum: dict[str, float] = {}
        by_key: dict[str, LabelGroup] = {}
        for bucket, sums in ((safe, safe_sum), (touchy, touchy_sum)):
            for w, p in bucket.items():
                for g in groups_of(w):
                    by_key[g.key] = g
                    sums[g.key] = sums.get(g.key, 0.0) + p
        best: tuple[int, float, str] | None = None
        for key, g in by_key.items():
            sens = touchy_sum.get(key, 0.0)
            total = safe_sum.get(key, 0.0) + (sens if sens >= self.sensitive_bar else 0.0)
            if total >= self.confidence - 1e-9:
                rank = (len(g.wnids), -total, key)
                if best is None or rank < best:
                    best = rank
        if best is None:
            return None
        g = by_key[best[2]]
        return Tag(min(1.0, -best[1]), group=g)


def policy(model: str | None = None, precision: str | None = None, confidence: float | None = None) -> Policy:
    """The policy for tags a model made at a precision; ``confidence`` (the setting) replaces
    the calibrated one when given, and the sensitive bar is never below it."""
    cal = calibration(model, precision)
    conf = cal.confidence if confidence is None else confidence
    return Policy(conf, max(cal.sensitive_bar, conf), cal.temperature)


def policy_for_tagger(tagger: str | None, confidence: float | None = None) -> Policy:
    """``policy`` for a catalogue's ``photos.tagger`` (``model/precision/weights-hash``)."""
    model, _, rest = (tagger or "").partition("/")
    return policy(model, rest.partition("/")[0], confidence)


# --- the verdict: the policy's headline for one classified image ------------------------------
def verdict(tag: Tag | None, lang: str = "en", top_k: Iterable[str] = ()) -> dict:
    """What ``POST /api/v1/classify`` and ``wanwu classify --format json`` add beside the raw
    predictions: ``{"kind": "class" | "group" | "none", "wnid", "group", "label", "label_en",
    "label_zh", "score", "text", "withheld"}`` (wnid ... score None when the policy is unsure).
    ``withheld``: the sensitive classes among ``top_k`` (the raw predictions' wnids) that are not
    the verdict: a page showing the raw predictions to a person leaves them out."""
    sensitive = sensitive_wnids()
    withheld = [w for w in top_k if w in sensitive and (tag is None or w not in tag.members)]
    if tag is None:
        empty = dict.fromkeys(("wnid", "group", "label", "label_en", "label_zh", "score"))
        return {"kind": "none", **empty, "text": headline(None, lang), "withheld": withheld}
    kind = "class" if tag.wnid else "group"
    return {"kind": kind, **tag.to_dict(lang), "text": headline(tag, lang), "withheld": withheld}


def headline(tag: Tag | None, lang: str = "en") -> str:
    """``probably a cat (93%)`` / ``可能是猫（93%）``; ``unsure`` / ``不确定`` without a tag."""
    zh = lang.lower().startswith("zh")
    if tag is None:
        return "不确定" if zh else "unsure"
    name, pct = tag.label(lang), f"{tag.score * 100:.0f}%"
    if zh:
        return f"可能是{name}（{pct}）"
    article = "an" if name[:1].lower() in "aeiou" else "a"
    return f"probably {article} {name} ({pct})"
