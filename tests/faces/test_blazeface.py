"""``wanwu.faces.blazeface``: the shipped graph is the recorded one, the letterbox and anchor
decoding put boxes back where the faces are (on padded and mirrored copies too), weighted NMS
merges what overlaps, and the detector finds the faces of ../shared/faces. Needs only ONNX
Runtime, NumPy and Pillow (no dlib)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from faces_data import PEOPLE
from PIL import Image

from wanwu.faces import blazeface
from wanwu.imaging import load_image


@pytest.fixture(scope="module")
def detector():
    return blazeface.BlazeFace()


def test_the_shipped_graph_is_the_recorded_conversion():
    data = blazeface.MODEL_PATH.read_bytes()
    assert hashlib.sha256(data).hexdigest() == blazeface.MODEL_SHA256
    notice = (blazeface.MODEL_PATH.parent / "NOTICE").read_text()
    assert blazeface.MODEL_SHA256 in notice and blazeface.SOURCE_SHA256 in notice and "Apache" in notice


def test_anchors_are_the_cell_centres_of_a_48_grid():
    a = blazeface.ANCHORS
    assert a.shape == (48 * 48, 2)
    assert np.allclose(a[0], [0.5 / 48, 0.5 / 48]) and np.allclose(a[1], [1.5 / 48, 0.5 / 48])  # row by row
    assert np.allclose(a[48], [0.5 / 48, 1.5 / 48]) and np.allclose(a[-1], [47.5 / 48, 47.5 / 48])


def test_decode_puts_a_box_on_its_anchor():
    regressors = np.zeros((48 * 48, 16), np.float32)
    logits = np.full((48 * 48, 1), -10, np.float32)
    cell = 5 * 48 + 7  # row 5, column 7: centre (7.5, 5.5) * 4 px
    regressors[cell, :4] = [2, -1, 20, 10]  # centre offset (2, -1), size 20 x 10
    regressors[cell, 4:6] = [-3, 1]  # first key point, relative to the anchor
    logits[cell] = 3
    rows, scores = blazeface.decode(regressors, logits)
    assert len(rows) == 1 and scores[0] == pytest.approx(1 / (1 + np.exp(-3)))
    cx, cy = 7.5 * 4 + 2, 5.5 * 4 - 1
    assert np.allclose(rows[0, :4], [cx - 10, cy - 5, cx + 10, cy + 5])
    assert np.allclose(rows[0, 4:6], [7.5 * 4 - 3, 5.5 * 4 + 1])
    assert blazeface.decode(regressors, np.full_like(logits, -10))[0].shape == (0, 16)  # nothing: empty


def test_weighted_nms_merges_overlapping_boxes_and_keeps_apart_ones():
    rows = np.array([[10, 10, 50, 50], [12, 10, 52, 50], [100, 100, 140, 140], [60, 60, 61, 61]], dtype=np.float64)
    scores = np.array([0.9, 0.6, 0.8, 0.55])
    out = blazeface.weighted_nms(rows, scores)
    assert [s for _, s in out] == [0.9, 0.8, 0.55]  # best first; the second box merged into the first
    merged = out[0][0]
    assert np.allclose(merged, (rows[0] * 0.9 + rows[1] * 0.6) / 1.5)
    assert np.allclose(out[1][0], rows[2]) and np.allclose(out[2][0], rows[3])


def test_letterbox_centres_the_image_in_the_square():
    image = Image.new("RGB", (400, 200), (255, 255, 255))
    square, scale, (ox, oy) = blazeface.letterbox(image)
    assert square.shape == (192, 192, 3) and scale == pytest.approx(192 / 400) and (ox, oy) == (0, 48)
    assert square[:48].max() == 0 and square[144:].max() == 0 and square[48:144].min() == 255


@pytest.fixture(scope="module")
def portrait(shared_faces):
    return load_image(shared_faces / "rose_leslie/img1.jpg").image


def _centre(d: blazeface.Detection) -> np.ndarray:
    left, top, right, bottom = d.box
    return np.array([(left + right) / 2, (top + bottom) / 2])


def test_boxes_map_back_through_padding_and_mirroring(detector, portrait):
    """The same face found in the photo, in the photo with a wide black margin (another letterbox,
    another scale) and in its mirror image lands at the same place of the photo."""
    (face,) = detector.detect(portrait)
    w, h = portrait.size
    width = face.box[2] - face.box[0]

    padded = Image.new("RGB", (w + 600, h), (0, 0, 0))
    padded.paste(portrait, (600, 0))
    (moved,) = detector.detect(padded)
    assert np.allclose(_centre(moved) - (600, 0), _centre(face), atol=0.08 * width)
    assert moved.box[2] - moved.box[0] == pytest.approx(width, rel=0.15)

    (mirrored,) = detector.detect(portrait.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    x, y = _centre(mirrored)
    assert np.allclose((w - x, y), _centre(face), atol=0.08 * width)
    left, top, right, bottom = face.box
    assert 0 <= left < right <= w and 0 <= top < bottom <= h
    assert all(left <= px <= right and top <= py <= bottom for px, py in face.points[:3])  # eyes, nose


def test_finds_every_face_of_the_shared_photos(detector, shared_faces):
    counts = {rel: len(detector.detect(load_image(shared_faces / rel).image)) for rel in PEOPLE}
    assert counts == {rel: len(people) for rel, people in PEOPLE.items()}


def test_no_face_in_blank_images(detector):
    assert detector.detect(Image.new("RGB", (640, 480), (128, 128, 128))) == []
    assert detector.detect(Image.new("RGB", (3, 900))) == []  # a sliver: letterboxed to a line


def test_a_face_where_a_person_is_and_none_on_animals_or_things(detector, photos):
    """The real photos shipped in the wheels (none of them tuned on): one face on the astronaut
    and on Grace Hopper; none on the cat, the coffee, the rocket, the motorcycle, the temple or
    the flower, so none of them would be tagged "people"."""
    found = {name: len(detector.detect(load_image(path).image)) for name, path in photos.items()}
    people = {"astronaut.png", "grace_hopper.jpg"}
    assert found == {name: 1 if name in people else 0 for name in photos}
