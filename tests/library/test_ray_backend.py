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

pytest.importorskip("ray.data", reason="needs the wanwu-tagger[ray] extra")

from wanwu.errors import ConfigError, CorruptImageError, EngineError
from wanwu.library import ray_backend
from wanwu.library.ray_backend import RayBackend
from wanwu.tag_policy import STORED_TOP_K

# Ray Data's own context nags about its deprecated fields when it is shipped to the workers
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")


@pytest.fixture(scope="module")
def local_ray():
    """A private Ray node for this module: 2 CPUs, loopback only, session files in /tmp."""
    from pathlib import Path

    import ray

    home_token = Path.home() / ".ray" / "auth_token"
    before = home_token.stat().st_mtime_ns if home_token.exists() else None
    temp_dir = tempfile.mkdtemp(prefix="wanwu-ray-", dir="/tmp")  # short: Ray's socket paths
    assert ray_backend.connect("local", num_cpus=2, temp_dir=temp_dir)
    yield ray
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)
    # the node's token lived in the environment: Ray's default would have written ~/.ray
    assert (home_token.stat().st_mtime_ns if home_token.exists() else None) == before


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


def test_same_answers_as_one_machine_and_bad_files_are_failures(local_ray, photo_tree, classifier):
    from wanwu.library.backend import LocalBackend, UnreadableFileError

    paths, corrupt = photo_tree
    missing = os.path.join(os.path.dirname(corrupt), "gone.jpg")
    todo = [*paths, corrupt, missing]
    got = {c.path: c for c in RayBackend(top_k=5, actors=2, batch_size=4).classify(todo)}
    local = LocalBackend(classifier, 5)
    want = {c.path: c for c in local.classify(todo)}
    local.close()

    assert set(got) == set(todo)
    for path in paths:
        r, w = got[path].result, want[path].result
        assert r.ok, r.error
        assert _tags(r) == _tags(w), path
        assert [round(p.score, 3) for p in r.predictions] == [round(p.score, 3) for p in w.predictions]
        assert (r.width, r.height) == (w.width, w.height)
        assert got[path].facts == want[path].facts  # hash and EXIF, read on the worker
        assert float(got[path].embedding @ want[path].embedding) > 0.999  # the same embedding (issue 22)
    assert isinstance(got[corrupt].result.error, CorruptImageError)
    assert got[corrupt].facts.sha256 == want[corrupt].facts.sha256
    assert isinstance(got[missing].result.error, UnreadableFileError) and got[missing].facts is None
    chelsea = next(p for p in paths if p.endswith("chelsea.png"))
    assert got[chelsea].result.predictions[0].label == "Egyptian cat"


def test_nothing_to_classify_starts_no_job(local_ray):
    assert list(RayBackend().classify([])) == []


def test_stop_keeps_what_arrived_and_ray_stays_usable(local_ray, photo_tree):
    paths, _ = photo_tree
    many = paths * 4  # 32 one-photo blocks
    backend = RayBackend(top_k=1, actors=1, batch_size=1)
    it = backend.classify(many)
    first = next(it)
    backend.stop()  # what the indexer does on Ctrl-C
    rest = list(it)
    assert first.path in paths and first.result.ok
    assert len(rest) < len(many) - 1  # the job ended early
    again = {c.path for c in RayBackend(top_k=1, actors=1, batch_size=8).classify(paths[:2])}
    assert again == set(paths[:2])


def test_an_actor_that_cannot_start_fails_the_job_with_the_reason(local_ray, photo_tree):
    paths, _ = photo_tree
    with pytest.raises(EngineError, match="unknown model 'nope'") as err:
        list(RayBackend(classifier_kwargs={"model": "nope"}, actors=1).classify(paths[:1]))
    assert type(err.value) is EngineError  # wanwu's own error on the worker: not a lost worker


def test_what_a_lost_worker_or_node_is():
    from ray import exceptions as rx

    assert "worker process died" in ray_backend._lost(rx.ActorDiedError())
    assert "node stopped answering" in ray_backend._lost(rx.ActorUnavailableError("socket closed", None))
    assert "node stopped answering" in ray_backend._lost(rx.NodeDiedError("gone"))
    assert "lack of memory" in ray_backend._lost(rx.OutOfMemoryError("oom"))
    wrapped = RuntimeError("executor")
    wrapped.__cause__ = rx.WorkerCrashedError()
    assert "worker process died" in ray_backend._lost(wrapped)
    assert ray_backend._lost(rx.RayError("a task raised")) is None
    assert ray_backend._lost(ValueError("unknown model 'nope'")) is None


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


def test_without_ray_one_line_says_how_to_install(monkeypatch, tmp_path, chelsea, capsys):
    from wanwu.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.data", None)
    assert not ray_backend.ray_available()
    with pytest.raises(ConfigError) as err:
        RayBackend()
    assert err.value.message == "--ray needs Ray: pip install 'wanwu-tagger[ray]'"
    assert main(["index", str(chelsea), "--db", str(tmp_path / "l.db"), "--ray", "auto"]) == 2
    captured = capsys.readouterr()
    assert captured.err == "wanwu: error: --ray needs Ray: pip install 'wanwu-tagger[ray]'\n" and captured.out == ""
    assert not (tmp_path / "l.db").exists()


# --- `wanwu index --ray`: the catalogue is the one-machine catalogue -------------------------
def _index(*argv: str) -> tuple[int, dict]:
    import contextlib
    import io
    import json

    from wanwu.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["index", *argv, "--json", "--quiet"])
    return code, json.loads(out.getvalue())


def _catalogue(db) -> dict[str, tuple]:
    """path -> (sha256, width, height, error_code, ((wnid, score to 4 places), ...), face count,
    face boxes)."""
    import sqlite3

    conn = sqlite3.connect(db)
    tags: dict[int, list] = {}
    for pid, wnid, score in conn.execute("SELECT photo_id, wnid, score FROM tags ORDER BY photo_id, rank"):
        tags.setdefault(pid, []).append((wnid, round(score, 4)))
    faces: dict[int, list] = {}  # with the faces extra: boxes found (on the workers with --ray)
    for pid, x, y, w, h in conn.execute("SELECT photo_id, x, y, w, h FROM faces ORDER BY photo_id, x"):
        faces.setdefault(pid, []).append(tuple(round(v, 4) for v in (x, y, w, h)))
    out = {
        path: (sha, w, h, err, tuple(tags.get(pid, ())), n, tuple(faces.get(pid, ())))
        for pid, path, sha, w, h, err, n in conn.execute(
            "SELECT id, path, sha256, width, height, error_code, faces FROM photos"
        )
    }
    conn.close()
    return out


def test_index_with_ray_equals_the_one_machine_index(local_ray, album, tmp_path, monkeypatch):
    """The library tests' album (nested folders, a duplicate, a corrupt JPEG, a hidden folder)."""
    from album_tree import CORRUPT

    code, plain = _index(str(album), "--db", str(tmp_path / "plain.db"))
    assert code == 1 and plain["failed"] == 1  # the corrupt JPEG
    photos = plain["new"] + plain["failed"]

    sent: list[int] = []
    real_from_items = local_ray.data.from_items
    monkeypatch.setattr(
        local_ray.data, "from_items", lambda items, **kw: sent.append(len(items)) or real_from_items(items, **kw)
    )
    from wanwu.library import people

    looked: list[int] = []  # photos the driver had to look at for faces itself
    real_find = people.find_missing_faces
    monkeypatch.setattr(
        people, "find_missing_faces", lambda c, f, todo, **kw: looked.append(len(todo)) or real_find(c, f, todo, **kw)
    )
    code, ray_run = _index(str(album), "--db", str(tmp_path / "ray.db"), "--ray", "auto", "--ray-actors", "2")
    assert looked == []  # every photo's faces came back from the workers
    assert code == 1 and (ray_run["new"], ray_run["failed"]) == (plain["new"], 1)
    assert sent == [photos]
    assert ray_run["metadata_read"] == 0  # GPS and the photos' own keywords came back from the workers

    one_machine, on_ray = _catalogue(tmp_path / "plain.db"), _catalogue(tmp_path / "ray.db")
    assert on_ray == one_machine and len(on_ray) == photos
    assert on_ray[str(album / CORRUPT)][3] == "corrupt_image"
    assert on_ray[str(album / "cats/chelsea.png")][4][0][0] == "n02124075"  # Egyptian cat
    from wanwu.faces import faces_available

    if faces_available():  # faces found on the workers, in the same decode: the same boxes
        assert (
            on_ray[str(album / "people/grace_hopper.jpg")][5:]
            == one_machine[str(album / "people/grace_hopper.jpg")][5:]
        )
        assert on_ray[str(album / "people/grace_hopper.jpg")][5] == 1

    # incremental: an unchanged tree sends nothing to the cluster
    code, again = _index(str(album), "--db", str(tmp_path / "ray.db"), "--ray", "auto")
    assert (again["unchanged"], again["new"], again["changed"]) == (photos - 1, 0, 0)
    assert code == 1 and again["failed"] == again["still_failing"] == 1  # the corrupt JPEG, not retried

    assert sent == [photos]  # no second job
    assert _catalogue(tmp_path / "ray.db") == on_ray


def test_export_parquet_after_a_ray_index(local_ray, photo_tree, tmp_path):
    import pyarrow.parquet as pq

    from wanwu.cli import main

    paths, corrupt = photo_tree
    db = str(tmp_path / "ray.db")
    _index(*paths, "--db", db, "--ray", "auto")
    assert main(["library", "--db", db, "--export", str(tmp_path / "results.parquet")]) == 0
    rows = pq.read_table(tmp_path / "results.parquet").to_pylist()
    assert sorted(r["path"] for r in rows) == sorted(paths)
    chelsea = next(r for r in rows if r["path"].endswith("chelsea.png"))
    assert chelsea["tags"][0]["group"] == "cat"  # split over three cat classes: the tag policy's group


def test_ctrl_c_on_a_real_ray_index_keeps_what_was_done_and_the_next_run_goes_on(
    local_ray, photos, tmp_path, monkeypatch
):
    """`wanwu index --ray local` in its own process (its own Ray node on 127.0.0.1): a real
    SIGINT once the first results are in the catalogue; then a second run sends only the rest."""
    import signal
    import sqlite3
    import time

    root = tmp_path / "archive"
    copies = 24  # enough that the rest cannot finish while the SIGINT is on its way (12 once could)
    for copy in range(copies):
        (root / f"roll{copy:02d}").mkdir(parents=True)
        for name, src in photos.items():  # distinct bytes (else the indexer copies tags, no inference)
            (root / f"roll{copy:02d}" / name).write_bytes(src.read_bytes() + bytes([copy]) * 8)
    total = copies * len(photos)
    db = tmp_path / "library.db"
    ray_tmp = tempfile.mkdtemp(prefix="wanwu-ray-", dir="/tmp")
    env = {**os.environ, "RAY_TMPDIR": ray_tmp, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "wanwu.cli", "index", str(root), "--db", str(db), "--ray", "local", "--ray-actors", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        done = 0
        deadline = time.monotonic() + 240
        while done == 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            if db.exists():
                with sqlite3.connect(db) as conn:
                    try:
                        done = conn.execute("SELECT count(*) FROM photos").fetchone()[0]
                    except sqlite3.OperationalError:  # schema not created yet
                        pass
        assert done > 0, proc.stderr.read() if proc.poll() is not None else "no result within 240 s"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert proc.returncode == 130, err
    assert "interrupted" in out and "run the same command again" in err
    assert not _ray_noise(out + err), err
    kept = _catalogue(db)
    assert 0 < len(kept) < total
    assert all(len(row[4]) == STORED_TOP_K for row in kept.values())  # every kept photo complete: its stored top-k

    sent: list[int] = []
    real_from_items = local_ray.data.from_items
    monkeypatch.setattr(
        local_ray.data, "from_items", lambda items, **kw: sent.append(len(items)) or real_from_items(items, **kw)
    )
    code, rest = _index(str(root), "--db", str(db), "--ray", "auto")
    assert code == 0 and rest["new"] == total - len(kept) and rest["unchanged"] == len(kept)
    assert sent == [total - len(kept)]
    final = _catalogue(db)
    assert len(final) == total and {p: final[p] for p in kept} == kept


# --- what a `wanwu index --ray local` run prints: wanwu's lines, never Ray's -------------------
# Ray's C++ log lines ("[2026-01-01 10:00:00,000 E 123 456] core_worker.cc:..."), its Python
# ERROR lines and tracebacks, and what it relays from raylets and workers ("(raylet) ...")
_RAY_NOISE = re.compile(r"^\[[\d\- :,.]+ [EWF] \d+ \d+\]|\bERROR\b|Traceback|\(raylet\)|pid=\d+\)|object store", re.M)


def _ray_noise(text: str) -> list[str]:
    return [line for line in text.splitlines() if _RAY_NOISE.search(line)]


def _archive(root, photos, copies: int) -> int:
    """``copies`` folders of the test photos, every file distinct (else no inference)."""
    for copy in range(copies):
        (root / f"roll{copy:02d}").mkdir(parents=True)
        for name, src in photos.items():
            (root / f"roll{copy:02d}" / name).write_bytes(src.read_bytes() + bytes([copy]) * 8)
    return copies * len(photos)


def _ray_index(root, db, ray_tmp, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "RAY_TMPDIR": ray_tmp, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(
        [sys.executable, "-m", "wanwu.cli", "index", str(root), "--db", str(db), "--ray", "local", *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow  # a private Ray cluster in a real `wanwu index --ray local` (as every local_ray test)
def test_a_ray_run_prints_no_ray_error_line(photo_tree, tmp_path):
    """Every run used to log, at error level, "... has constructor arguments in the object store
    and max_restarts > 0": Ray Data's actors get their arguments by reference, and Ray warns that
    it could not restart them. wanwu asks for no restarts, so there is nothing to warn about."""
    paths, corrupt = photo_tree
    ray_tmp = tempfile.mkdtemp(prefix="wanwu-ray-", dir="/tmp")
    try:
        proc = _ray_index(tmp_path, tmp_path / "l.db", ray_tmp, "--ray-actors", "2")
        out, err = proc.communicate(timeout=300)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert proc.returncode == 1, err  # the corrupt JPEG, reported as such
    assert "constructor arguments in the object store" not in err
    lines = [line for line in err.splitlines() if not line.startswith("wanwu: faces: ")]  # the faces summary
    assert len(lines) == 1 and lines[0].startswith(f"wanwu: failed: {corrupt}"), err
    assert len(out.splitlines()) == 2 and out.startswith(f"indexed: {len(paths)} new"), out


@pytest.mark.parametrize("victim", ["worker", "raylet"])
def test_a_killed_worker_or_raylet_ends_the_run_in_one_wanwu_line_and_the_next_run_goes_on(
    victim, local_ray, photos, tmp_path, monkeypatch
):
    """SIGKILL to a classifier actor's process, or to the node's raylet, once results are in the
    catalogue: one line on stderr says what happened, that the classified photos are kept and
    how to go on (no Ray traceback, nothing from Ray on stdout); the next run sends the rest."""
    import signal
    import sqlite3
    import time

    import psutil

    root = tmp_path / "archive"
    total = _archive(root, photos, 24)
    db = tmp_path / "library.db"
    ray_tmp = tempfile.mkdtemp(prefix="wanwu-ray-", dir="/tmp")
    proc = _ray_index(root, db, ray_tmp, "--ray-actors", "1")
    try:
        killed = None
        deadline = time.monotonic() + 240
        while killed is None and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            if not db.exists():
                continue
            with sqlite3.connect(db) as conn:
                try:
                    if not conn.execute("SELECT count(*) FROM tags").fetchone()[0]:
                        continue
                except sqlite3.OperationalError:  # schema not created yet
                    continue
            for child in psutil.Process(proc.pid).children(recursive=True):
                try:
                    hit = child.name() == "raylet" if victim == "raylet" else "MapWorker" in " ".join(child.cmdline())
                except psutil.Error:
                    continue
                if hit:
                    child.send_signal(signal.SIGKILL)
                    killed = child.pid
                    break
        assert killed, proc.communicate(timeout=60)[1] if proc.poll() is not None else f"no {victim} found"
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert proc.returncode == 75, err  # "try again later": a script may retry on it
    assert out == "" and len(err.splitlines()) == 1, (out, err)
    what = "a worker process died" if victim == "worker" else "a node stopped answering"
    assert err.startswith(f"wanwu: error: the Ray job stopped: {what}"), err
    assert "the photos classified until then are kept in the catalogue: run the same command again" in err
    assert "Ray's logs: " in err

    kept = _catalogue(db)
    assert 0 < len(kept) < total
    assert all(len(row[4]) == STORED_TOP_K for row in kept.values())  # every kept photo complete: its stored top-k
    sent: list[int] = []
    real_from_items = local_ray.data.from_items
    monkeypatch.setattr(
        local_ray.data, "from_items", lambda items, **kw: sent.append(len(items)) or real_from_items(items, **kw)
    )
    code, rest = _index(str(root), "--db", str(db), "--ray", "auto")
    assert code == 0 and rest["new"] == total - len(kept) and sent == [total - len(kept)]
