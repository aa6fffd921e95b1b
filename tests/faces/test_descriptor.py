"""The ONNX descriptor gives dlib's own numbers (so catalogues' old descriptors stay valid), is
built once into the cache, and a file that is not dlib's network is refused with a reason; the
HOG detector is cached in dlib's binary form and finds the same."""

from __future__ import annotations

import numpy as np
import pytest
from faces_data import PEOPLE

from wanwu.imaging import load_image

TOLERANCE = 1e-4  # per element; descriptors' elements are ~0.01-0.4, measured difference ~3e-7


@pytest.fixture(scope="session")
def dlib_finder(finder):
    from wanwu.faces.detect import FaceFinder

    return FaceFinder(dlib_descriptor=True)


def _assert_same_faces(ours, theirs, where):
    assert len(ours) == len(theirs), where
    for a, b in zip(ours, theirs):
        assert a.box == b.box and a.landmarks == b.landmarks, where  # dlib still finds and aligns
        assert a.descriptor.dtype == np.float32 and a.descriptor.shape == (128,)
        diff = float(np.abs(a.descriptor - b.descriptor).max())
        assert diff < TOLERANCE, (where, diff)


def test_descriptor_matches_dlib_on_a_portrait(finder, dlib_finder, photos):
    image = load_image(photos["grace_hopper.jpg"]).image
    _assert_same_faces(finder.find(image), dlib_finder.find(image), "grace_hopper.jpg")


def test_descriptor_matches_dlib_on_every_face_of_shared_faces(found, dlib_finder, shared_faces):
    for rel in PEOPLE:
        theirs = sorted(dlib_finder.find(load_image(shared_faces / rel).image), key=lambda f: f.box[0])
        _assert_same_faces(found[rel], theirs, rel)


def test_a_batch_gives_each_chip_its_own_descriptor(finder, photos):
    from wanwu.faces.descriptor import OnnxDescriptor
    from wanwu.faces.models import DESCRIPTOR_FILE, weights_dir

    image = load_image(photos["grace_hopper.jpg"]).image
    face = finder.find(image)[0]
    chip = np.asarray(image.resize((150, 150)))
    other = np.ascontiguousarray(chip[:, ::-1])  # mirrored: another chip
    describe = OnnxDescriptor(weights_dir() / DESCRIPTOR_FILE).describe
    both = describe(np.stack([chip, other]))
    assert np.allclose(both[0], describe(chip[None])[0], atol=1e-5)
    assert np.allclose(both[1], describe(other[None])[0], atol=1e-5)
    assert not np.allclose(both[0], both[1], atol=1e-3)
    assert describe(np.zeros((0, 150, 150, 3), np.uint8)).shape == (0, 128)
    assert face.descriptor.shape == (128,)


def test_the_graph_is_built_once_into_the_cache(finder, tmp_path, monkeypatch):
    from wanwu.faces import descriptor
    from wanwu.faces.models import DESCRIPTOR_FILE, weights_dir

    monkeypatch.setenv("WANWU_CACHE_DIR", str(tmp_path))
    weights = weights_dir() / DESCRIPTOR_FILE
    path = descriptor.cache_path(weights)
    assert path.parent == tmp_path / "onnx" and f"g{descriptor.GRAPH_VERSION}" in path.name
    first = descriptor.load_or_build(weights)
    assert path.read_bytes() == first and path.with_name(path.name + ".sha256").is_file()
    monkeypatch.setattr(descriptor, "build_graph", lambda net: pytest.fail("built again"))
    assert descriptor.load_or_build(weights) == first


@pytest.mark.parametrize(
    "damage",
    ["truncated", "trailing", "another dlib file", "not dlib at all", "wrong filter count"],
)
def test_a_file_that_is_not_the_network_is_refused(finder, damage):
    from wanwu.faces.dlib_format import DlibFormatError, _Reader, read_network
    from wanwu.faces.models import DESCRIPTOR_FILE, LANDMARKS_FILE, weights_dir

    data = (weights_dir() / DESCRIPTOR_FILE).read_bytes()
    if damage == "truncated":
        data, words = data[: len(data) // 2], "the file ends inside"
    elif damage == "trailing":
        data, words = data + b"\0", "1 bytes left after the network"
    elif damage == "another dlib file":
        data, words = (weights_dir() / LANDMARKS_FILE).read_bytes(), "not dlib's face descriptor network"
    elif damage == "not dlib at all":
        data, words = b"\x89PNG\r\n\x1a\n" + bytes(100), "not dlib's face descriptor network"
    else:  # the first con layer's filter count (32) said as 33: shapes are checked, not trusted
        r = _Reader(data)
        r.pos = data.index(b"con_") - 2  # (its length: 2 bytes) details come inside-out: the stem's 7x7 con is first
        r.string(), r.tensor("params")
        assert data[r.pos : r.pos + 2] == b"\x01\x20"
        data, words = data[: r.pos] + b"\x01\x21" + data[r.pos + 2 :], "33 filters"
    with pytest.raises(DlibFormatError, match=words):
        read_network(data, "test.dat")


def test_the_detector_loads_from_the_cache_and_finds_the_same(finder, photos, tmp_path, monkeypatch):
    import dlib

    from wanwu.faces.detect import _frontal_face_detector

    monkeypatch.setenv("WANWU_CACHE_DIR", str(tmp_path))
    first = _frontal_face_detector(dlib)  # built, and saved in dlib's binary form
    name = f"frontal_face_detector-dlib{dlib.__version__}.svm"
    assert sorted(p.name for p in (tmp_path / "faces").iterdir()) == [name, f"{name}.sha256"]
    monkeypatch.setattr(dlib, "get_frontal_face_detector", lambda: pytest.fail("built again"))
    loaded = _frontal_face_detector(dlib)
    image = np.asarray(load_image(photos["grace_hopper.jpg"]).image)
    boxes, scores, kinds = loaded.run(image, 0, -0.5)  # weak detections too: more boxes compared
    expected = first.run(image, 0, -0.5)
    assert (list(boxes), scores, kinds) == (list(expected[0]), expected[1], expected[2])
    assert len(boxes) >= 1
