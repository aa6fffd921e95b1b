"""Faces fixtures: the session's ``FaceFinder`` (the test skips without the ``faces`` extra)
and ``../shared/faces`` (six public figures; the test skips when it is not beside the checkout)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from faces_data import PEOPLE

ROOT = Path(__file__).resolve().parents[2]


def _shared_faces() -> Path | None:
    env = os.environ.get("WANWU_FACES_DATA")
    candidates = [Path(env)] if env else [ROOT.parent / "shared" / "faces", ROOT.parent.parent / "shared" / "faces"]
    return next((p for p in candidates if (p / "README.md").is_file()), None)


@pytest.fixture(scope="session")
def shared_faces() -> Path:
    folder = _shared_faces()
    if folder is None:
        pytest.skip("../shared/faces is not beside this checkout (set WANWU_FACES_DATA)")
    missing = [rel for rel in PEOPLE if not (folder / rel).is_file()]
    assert not missing, f"photos missing from {folder}: {missing}"
    return folder


@pytest.fixture(scope="session")
def finder():
    from wanwu.faces import faces_available

    if not faces_available():
        pytest.skip("the faces extra is not installed: pip install 'wanwu-tagger[faces]'")
    from wanwu.faces.detect import FaceFinder

    return FaceFinder()


@pytest.fixture(scope="session")
def found(finder, shared_faces) -> dict:
    """photo (relative) -> its faces, left to right, each decoded upright as the indexer does."""
    from wanwu.imaging import load_image

    out = {}
    for rel in PEOPLE:
        faces = finder.find(load_image(shared_faces / rel).image)
        out[rel] = sorted(faces, key=lambda f: f.box[0])
    return out
