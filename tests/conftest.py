"""Shared fixtures: real photos shipped in wheels (scikit-image, matplotlib, scikit-learn), the
default classifier, random-weight torchvision-format state_dicts, isolated cache/weights
directories for the tests that write to them, and one int8 model cache for the whole session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest


def pytest_collection_modifyitems(items):
    """The slow tier by what a test needs, where a mark in the file would not say it once: every
    test that starts a local Ray cluster (``local_ray``: Ray's processes, actors that each load
    the model; the largest file of the suite by time) is ``slow``. `make test` leaves the slow tier
    out, `make test-all` (CI) runs it. The other slow tests are marked where they are written."""
    for item in items:
        if "local_ray" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    """Every test (and every process a test starts) uses a session-private ``WANWU_CACHE_DIR``,
    never the user's ``~/.cache/wanwu``. Set ``WANWU_TEST_CACHE_DIR`` to keep the built graphs
    between runs (a folder of your choosing; building the default model takes about 2 s)."""
    kept = os.environ.get("WANWU_TEST_CACHE_DIR")
    cache = Path(kept).expanduser() if kept else tmp_path_factory.mktemp("wanwu-session-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANWU_CACHE_DIR", str(cache))
        yield cache
    if not kept:
        shutil.rmtree(cache, ignore_errors=True)


class Int8Cache(NamedTuple):
    path: Path  # a WANWU_CACHE_DIR holding the default model's int8 model (and its fp32 graph)
    prepare: subprocess.CompletedProcess  # the `wanwu -v models --prepare --precision int8 --format json` that built it


@pytest.fixture(scope="session")
def int8_cache(tmp_path_factory) -> Int8Cache:
    """The default model's int8 model, calibrated once per session (~30 s, the slowest step a test
    can ask for) into a cache of its own by a real ``wanwu -v models --prepare --precision int8
    --format json`` process, as a user would prepare it. Tests that need an int8 model use this
    cache (``use_int8_cache``) instead of calibrating again in an empty one; the prepare test reads
    what that process printed."""
    root = tmp_path_factory.mktemp("int8-cache")
    cache = root / "cache"
    env = {**os.environ, "WANWU_CACHE_DIR": str(cache), "XDG_CACHE_HOME": str(root / "xdg")}
    done = subprocess.run(
        [sys.executable, "-m", "wanwu.cli", "-v", "models", "--prepare", "--precision", "int8", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    yield Int8Cache(cache, done)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def use_int8_cache(int8_cache, monkeypatch) -> Path:
    """``WANWU_CACHE_DIR`` set to the session's int8 cache for this test (the int8 model is read,
    not calibrated)."""
    assert int8_cache.prepare.returncode == 0, int8_cache.prepare.stderr[-3000:]
    monkeypatch.setenv("WANWU_CACHE_DIR", str(int8_cache.path))
    return int8_cache.path


def _photo_paths() -> dict[str, Path]:
    import matplotlib
    import skimage
    import sklearn

    skimage_data = Path(skimage.__file__).parent / "data"
    sklearn_images = Path(sklearn.__file__).parent / "datasets" / "images"
    photos = {
        name: skimage_data / name
        for name in ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "motorcycle_left.png")
    }
    photos["grace_hopper.jpg"] = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    photos["china.jpg"] = sklearn_images / "china.jpg"
    photos["flower.jpg"] = sklearn_images / "flower.jpg"
    missing = [str(p) for p in photos.values() if not p.is_file()]
    assert not missing, f"test photos missing from the installed wheels: {missing}"
    return photos


@pytest.fixture(scope="session")
def photos() -> dict[str, Path]:
    """name -> path of every real test photo."""
    return _photo_paths()


@pytest.fixture(scope="session")
def chelsea(photos) -> Path:
    return photos["chelsea.png"]


@pytest.fixture(scope="session")
def coffee(photos) -> Path:
    return photos["coffee.png"]


@pytest.fixture(scope="session")
def rocket_jpeg(photos) -> Path:
    return photos["rocket.jpg"]


@pytest.fixture(scope="session")
def classifier():
    """The default model on the default engine (official weights only), built in the session cache."""
    from wanwu import Classifier

    return Classifier()


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch) -> Path:
    """A private, empty ``WANWU_CACHE_DIR``, removed afterwards (exports can be hundreds of MB)."""
    cache = tmp_path / "wanwu-cache"
    monkeypatch.setenv("WANWU_CACHE_DIR", str(cache))
    yield cache
    shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture
def no_weights(tmp_path, monkeypatch) -> dict[str, Path]:
    """Empty ``WANWU_WEIGHTS_DIR`` and ``TORCH_HOME``: the real hub cache is not seen."""
    dirs = {"weights": tmp_path / "weights", "torch_home": tmp_path / "torch-home"}
    for d in dirs.values():
        d.mkdir()
    monkeypatch.setenv("WANWU_WEIGHTS_DIR", str(dirs["weights"]))
    monkeypatch.setenv("TORCH_HOME", str(dirs["torch_home"]))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    return dirs


@pytest.fixture(scope="session")
def random_weights(tmp_path_factory):
    """``random_weights(name)`` -> path of a torchvision-format state_dict with random values
    (the architecture's own init, torch seed 0), written once per session and deleted after."""
    made: dict[str, Path] = {}
    folder = tmp_path_factory.mktemp("random-weights")

    def make(name: str) -> Path:
        if name not in made:
            import torch

            from wanwu.models import get_spec

            torch.manual_seed(0)
            model = get_spec(name).build()
            path = folder / f"{name}-random.pth"
            torch.save(model.state_dict(), path)
            made[name] = path
        return made[name]

    yield make
    for path in made.values():
        path.unlink(missing_ok=True)


@pytest.fixture
def app_clients():
    """``open_client(config, pool=None)``: a started ``TestClient`` for an app built from ``config``
    (errors answered, not raised); every client opened is closed after the test."""
    from fastapi.testclient import TestClient

    from wanwu.server import InferenceService, create_app

    opened = []

    def open_client(config, pool=None):
        c = TestClient(create_app(config, service=InferenceService(config, pool=pool)), raise_server_exceptions=False)
        c.__enter__()
        opened.append(c)
        return c

    yield open_client
    for c in opened:
        c.__exit__(None, None, None)
