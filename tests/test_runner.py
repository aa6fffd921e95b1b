"""The stage runner (``wanwu.pipeline.runner``): one ``Timing`` per image, every stage reported
once to the recorder, the same answers from ``classify_one`` and ``classify_iter``, and the
hooks the indexer plugs in (``read``, ``inspect``, ``features``)."""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager

import pytest

from wanwu.errors import ImageInputError
from wanwu.pipeline.results import STAGES, Timing
from wanwu.pipeline.runner import BatchOptions, Runner


class Tally:
    """A ``Recorder`` that counts observations per stage."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def observe(self, model: str, stage: str, seconds: float) -> None:
        assert seconds >= 0
        self.counts[stage] += 1


def test_timing_total_and_milliseconds():
    t = Timing(decode=0.001, preprocess=0.002, inference=0.003, postprocess=0.004)
    assert t.total == pytest.approx(0.010)
    ms = t.as_ms()
    assert list(ms) == [*STAGES, "total"] and ms["total"] == pytest.approx(10.0)


def test_classify_one_times_every_stage(classifier, chelsea):
    result = classifier.classify_one(chelsea, top_k=3)
    assert result.ok and "cat" in result.predictions[0].label
    assert set(result.timing_ms) == {*STAGES, "total"}
    assert all(v > 0 for v in result.timing_ms.values())
    assert result.timing_ms["total"] == pytest.approx(sum(result.timing_ms[s] for s in STAGES))


def test_run_records_each_stage_once(classifier, chelsea):
    tally = Tally()
    Runner(classifier, tally).run(chelsea.read_bytes(), top_k=1, name="chelsea")
    assert tally.counts == Counter(dict.fromkeys(STAGES, 1))


def test_run_many_records_one_forward_pass_per_batch(classifier, photos):
    tally = Tally()
    sources = [photos["chelsea.png"], b"not an image", photos["coffee.png"], photos["rocket.jpg"]]
    results = [ran.result for ran in Runner(classifier, tally).run_many(sources, top_k=1, batch_size=2)]
    assert [r.ok for r in results] == [True, False, True, True]  # input order, the bad one in place
    assert results[1].error.code == "not_an_image" and results[1].name == "image[1]"
    # batches of 2 inputs: [chelsea, bad] -> a pass of 1, [coffee, rocket] -> a pass of 2
    assert tally.counts["inference"] == 2
    assert tally.counts["decode"] == tally.counts["preprocess"] == tally.counts["postprocess"] == 3


def test_timing_travels_by_name():
    t = Timing(decode=0.001, preprocess=0.002, inference=0.003, postprocess=0.004)
    assert Timing.from_dict(t.as_dict()) == t
    assert list(t.as_dict()) == list(STAGES)
    assert Timing.from_dict({"inference": 0.5, "a_stage_from_elsewhere": 1.0}) == Timing(inference=0.5)


def test_explain_records_its_class_map_apart_from_postprocess(classifier, chelsea):
    tally = Tally()
    explanation = Runner(classifier, tally).explain(chelsea.read_bytes(), top_k=1, name="chelsea")
    assert tally.counts == Counter({**dict.fromkeys(STAGES, 1), "class_map": 1})
    assert explanation.timing.postprocess > 0  # the caller's wait after the pass: top-k and the map


def test_batched_runner_answers_like_the_direct_one(classifier, chelsea):
    tally = Tally()
    runner = Runner(classifier, tally, batching=BatchOptions(max_batch_size=4, max_wait_ms=0, max_queue=8))
    try:
        batched = runner.run(chelsea.read_bytes(), top_k=3, name="chelsea")
    finally:
        runner.close()
    direct = classifier.classify_one(chelsea, top_k=3)
    assert [p.index for p in batched.predictions] == [p.index for p in direct.predictions]
    assert runner.batcher is not None and (runner.batcher.batches, runner.batcher.images) == (1, 1)  # inline, alone
    assert tally.counts == Counter(dict.fromkeys(STAGES, 1))


def test_run_many_hooks_read_inspect_and_features(classifier, photos):
    """The indexer's hooks: ``read`` opens each source once and gives bytes and facts, ``inspect``
    sees the decoded image, ``features`` returns the pass's feature map; a source that cannot be
    read fails in place with no facts."""
    opened: list[str] = []
    seen: list[tuple[str, tuple[int, int]]] = []

    @contextmanager
    def read(name):
        if name == "missing":
            raise ImageInputError("no such photo")
        opened.append(name)
        yield photos[name].read_bytes(), {"name": name}

    def inspect(data, prepared, facts):
        seen.append((facts["name"], prepared.image.size))

    names = ["chelsea.png", "missing", "coffee.png"]
    ran = list(classifier.runner.run_many(names, top_k=1, batch_size=2, read=read, inspect=inspect, features=True))
    assert [r.source for r in ran] == names and sorted(opened) == ["chelsea.png", "coffee.png"]  # read on 2 threads
    assert [r.result.ok for r in ran] == [True, False, True] and ran[1].facts is None
    assert ran[0].facts == {"name": "chelsea.png"} and sorted(s[0] for s in seen) == ["chelsea.png", "coffee.png"]
    assert ran[0].features is not None and ran[0].features.ndim == 3 and ran[1].features is None


def test_classify_iter_agrees_with_classify_one(classifier, photos):
    paths = [photos[n] for n in ("chelsea.png", "coffee.png", "astronaut.png")]
    batched = list(classifier.classify_iter(paths, top_k=2, batch_size=3))
    for path, result in zip(paths, batched):
        single = classifier.classify_one(path, top_k=2)
        assert [p.index for p in single.predictions] == [p.index for p in result.predictions]
        assert result.timing.inference > 0


def test_classifier_stages_are_named_after_what_they_do(classifier, chelsea):
    decoded = classifier.decode(chelsea)
    x = classifier.preprocess(decoded.image)
    assert x.shape == (3, classifier.spec.input_size, classifier.spec.input_size)
    assert not hasattr(classifier, "load") and not hasattr(classifier, "prepare")


def test_run_many_reads_sources_only_a_window_ahead(classifier, chelsea):
    """A huge stream of images is not decoded all at once: the first result arrives after at
    a window (``2 * batch_size + threads``) plus one batch of sources were taken from the iterator."""
    taken = 0

    def sources():
        nonlocal taken
        for _ in range(10_000):
            taken += 1
            yield str(chelsea)

    results = classifier.classify_iter(sources(), top_k=1, batch_size=4, decode_threads=2)
    first = next(results)
    assert first.ok and taken <= (2 * 4 + 2) + 4  # not 10,000
    results.close()
