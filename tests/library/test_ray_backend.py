"""The Ray classify step on a real local Ray runtime (2 CPUs, 127.0.0.1 only): the same tags as
one machine, bad files as per-file failures, nothing on the network beyond loopback."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

pytest.importorskip("ray.data", reason="needs the wanwu[ray] extra")

from wanwu.errors import ConfigError, CorruptImageError, ImageNotFoundError
from wanwu.library import ray_backend
from wanwu.library.ray_backend import RayBackend

# Ray Data's own context nags about its deprecated fields when it is shipped to the workers
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")


@pytest.fixture(scope="module")
def local_ray():
    """A private Ray node for this module: 2 CPUs, loopback only, session files in /tmp."""
    import ray

    temp_dir = tempfile.mkdtemp(prefix="wanwu-ray-", dir="/tmp")  # short: Ray's socket paths
    assert ray_backend.connect("local", num_cpus=2, temp_dir=temp_dir)
    yield ray
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def photo_tree(tmp_path, photos):
    """Nested folders of real photos, one corrupt JPEG; returns (paths, corrupt path)."""
    paths = []
    for i, (name, src) in enumerate(sorted(photos.items())):
        folder = tmp_path / ("a" if i % 2 else "b") / "c"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, folder / name)
        paths.append(str(folder / name))
    corrupt = tmp_path / "a" / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)
    return paths, str(corrupt)


def _tags(result):
    return [p.wnid for p in result.predictions]


def test_same_tags_as_one_machine_and_bad_files_are_failures(local_ray, photo_tree, classifier):
    paths, corrupt = photo_tree
    missing = os.path.join(os.path.dirname(corrupt), "gone.jpg")
    backend = RayBackend(top_k=5, actors=2, batch_size=4)
    got = dict(backend.classify([*paths, corrupt, missing]))

    assert set(got) == {*paths, corrupt, missing}
    expected = dict(zip(paths, classifier.classify_iter(paths, top_k=5)))
    for path, want in expected.items():
        r = got[path]
        assert r.ok, r.error
        assert _tags(r) == _tags(want), path
        assert [round(p.score, 3) for p in r.predictions] == [round(p.score, 3) for p in want.predictions]
        assert (r.width, r.height) == (want.width, want.height)
        assert r.predictions[0].label == want.predictions[0].label
    assert isinstance(got[corrupt].error, CorruptImageError)
    assert isinstance(got[missing].error, ImageNotFoundError) and "no such file" in got[missing].error.message
    assert _tags(got[next(p for p in paths if p.endswith("chelsea.png"))])[0] == "n02124075"  # Egyptian cat


def test_nothing_to_classify_starts_no_job(local_ray):
    assert list(RayBackend().classify([])) == []


def test_closing_early_keeps_what_arrived_and_ray_stays_usable(local_ray, photo_tree):
    paths, _ = photo_tree
    backend = RayBackend(top_k=1, actors=1, batch_size=1)
    it = backend.classify(paths)
    first = next(it)
    it.close()  # what Ctrl-C in the indexer does to the stream
    assert first[0] in paths and first[1].ok
    again = dict(RayBackend(top_k=1, actors=1, batch_size=8).classify(paths[:2]))
    assert set(again) == set(paths[:2])


def _ray_pids() -> set[int]:
    import psutil

    me = psutil.Process()
    return {me.pid, *(c.pid for c in me.children(recursive=True))}


def _is_loopback(addr: str) -> bool:
    host = addr.rsplit(":", 1)[0].strip("[]")
    return host.startswith(("127.", "::ffff:127.")) or host == "::1"


def test_ray_listens_and_connects_on_loopback_only(local_ray, photo_tree):
    """`ss -tanp` while a job runs: every socket of this process and Ray's (its children)."""
    if shutil.which("ss") is None:
        pytest.skip("needs ss (iproute2)")
    paths, _ = photo_tree
    it = RayBackend(top_k=1, actors=2, batch_size=1).classify(paths)
    next(it)  # actors are up and working
    out = subprocess.run(["ss", "-tanpH"], capture_output=True, text=True, check=True).stdout
    list(it)
    pids = _ray_pids()
    seen, beyond = 0, []
    for line in out.splitlines():
        owners = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if not owners & pids:
            continue
        seen += 1
        state, local, peer = line.split()[0], line.split()[3], line.split()[4]
        if not _is_loopback(local) or (state != "LISTEN" and not _is_loopback(peer)):
            beyond.append(line)
    assert seen > 5, "found none of Ray's sockets: is ss showing processes?"
    assert not beyond, "\n".join(beyond)


def test_without_ray_one_line_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.data", None)
    assert not ray_backend.ray_available()
    with pytest.raises(ConfigError) as err:
        RayBackend()
    assert err.value.message == "--ray needs Ray: pip install 'wanwu[ray]'"
