"""``FaceFinder`` on real photos: faces per photo against ../shared/faces/README.md, boxes
where the faces are, descriptors that tell people apart; and grace_hopper.jpg (matplotlib's
sample portrait), which always runs with the extra installed. With the default detector
(BlazeFace); HOG, still selectable, finds the same faces."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from faces_data import PEOPLE
from PIL import Image

from wanwu.faces.cluster import MATCH_DISTANCE, PAIR_DISTANCE
from wanwu.imaging import load_image


def test_one_face_in_a_portrait_with_box_landmarks_and_descriptor(finder, photos):
    image = load_image(photos["grace_hopper.jpg"]).image
    faces = finder.find(image)
    assert len(faces) == 1
    face = faces[0]
    left, top, width, height = face.box
    assert 0.2 < left + width / 2 < 0.8 and 0.1 < top + height / 2 < 0.6  # the face, not the uniform
    assert 0.1 < width < 0.8 and 0 < height < 1
    assert len(face.landmarks) == 5
    assert all(left - 0.05 <= x <= left + width + 0.05 and 0 <= y <= 1 for x, y in face.landmarks)
    assert face.descriptor.shape == (128,) and face.descriptor.dtype == np.float32
    assert 0.5 < float(np.linalg.norm(face.descriptor)) < 3


def test_the_same_face_at_another_size_is_the_same_descriptor(finder, photos):
    image = load_image(photos["grace_hopper.jpg"]).image
    big = finder.find(image)[0]
    small = finder.find(image.resize((image.width // 2, image.height // 2), Image.BILINEAR))[0]
    assert np.allclose(big.box, small.box, atol=0.03)
    assert float(np.linalg.norm(big.descriptor - small.descriptor)) < PAIR_DISTANCE


def test_no_face_in_a_cat_or_a_tiny_image(finder, photos):
    assert finder.find(load_image(photos["chelsea.png"]).image) == []
    assert finder.find(Image.new("RGB", (8, 8))) == []
    assert finder.find(Image.new("L", (300, 200), 128)) == []  # grey: converted, nothing found


def test_faces_per_photo_match_the_readme(found):
    counts = {rel: len(faces) for rel, faces in found.items()}
    for rel, people in PEOPLE.items():
        if rel == "groups/obama_and_biden.jpg":  # two clear faces, plus a child half hidden
            assert counts[rel] >= 2, rel
        else:
            assert counts[rel] == len(people), (rel, counts[rel])


def _labelled(found) -> tuple[list[str], np.ndarray]:
    names, rows = [], []
    for rel, faces in found.items():
        people = PEOPLE[rel]
        if rel == "groups/obama_and_biden.jpg":  # the two largest faces are Biden (left), Obama
            faces = sorted(sorted(faces, key=lambda f: -f.box[2] * f.box[3])[:2], key=lambda f: f.box[0])
        for face, who in zip(faces, people):
            names.append(who)
            rows.append(face.descriptor)
    return names, np.stack(rows)


def test_same_person_is_close_and_different_people_are_far(found):
    names, d = _labelled(found)
    dist = np.linalg.norm(d[:, None] - d[None], axis=2)
    pairs = list(itertools.combinations(range(len(names)), 2))
    same = [dist[i, j] for i, j in pairs if names[i] == names[j]]
    other = [dist[i, j] for i, j in pairs if names[i] != names[j]]
    assert max(same) < MATCH_DISTANCE < min(other), (max(same), min(other))
    assert max(same) < PAIR_DISTANCE  # every pair of one person could start that person


@pytest.mark.parametrize("rel", ["groups/two_people.jpg"])
def test_boxes_are_where_the_people_are(found, rel):
    left, right = found[rel]
    assert left.box[0] + left.box[2] < 0.5 < right.box[0]


def test_hog_stays_selectable_and_finds_the_same_faces(finder, shared_faces, monkeypatch):
    """``WANWU_FACE_DETECTOR=hog`` brings back dlib's HOG detector (the one before BlazeFace),
    which finds the same faces; its boxes are where BlazeFace's are."""
    from wanwu.faces.detect import FaceFinder

    monkeypatch.setenv("WANWU_FACE_DETECTOR", "hog")
    hog = FaceFinder()
    assert hog.detector == "hog" and finder.detector == "blazeface"
    for rel in ("groups/two_people.jpg", "rose_leslie/img1.jpg", "same-photo/obama-240p.jpg"):
        image = load_image(shared_faces / rel).image
        ours, theirs = finder.find(image), hog.find(image)
        assert len(ours) == len(theirs) == len(PEOPLE[rel])
        for a, b in zip(sorted(ours, key=lambda f: f.box[0]), sorted(theirs, key=lambda f: f.box[0])):
            centre_a, centre_b = np.add(a.box[:2], np.divide(a.box[2:], 2)), np.add(b.box[:2], np.divide(b.box[2:], 2))
            assert np.all(np.abs(centre_a - centre_b) < 0.1 * np.array(a.box[2:]))
            assert float(np.linalg.norm(a.descriptor - b.descriptor)) < 0.15  # the same face, nearly the same chip
    with pytest.raises(ValueError, match="blazeface, hog"):
        FaceFinder(detector="cnn")
