"""The one line ``wanwu index`` ends with: a rate only when it means something (issue 26 item 18:
one non-photo was reported as "400.5 photos/s")."""

from __future__ import annotations

from wanwu.library.indexer import RATE_MIN_PHOTOS, IndexSummary


def test_no_rate_when_nothing_was_classified_or_only_a_failure():
    assert "photos/s" not in IndexSummary(unchanged=3).line()
    one_non_photo = IndexSummary(failed=1, classified=1, seconds=0.9, classify_seconds=0.0025)
    assert "photos/s" not in one_non_photo.line()
    assert one_non_photo.line().endswith("in 0.9 s (1 classified)")


def test_no_rate_for_a_tiny_run_and_a_rate_for_a_real_one():
    tiny = IndexSummary(new=RATE_MIN_PHOTOS - 1, classified=RATE_MIN_PHOTOS - 1, seconds=1.0, classify_seconds=0.5)
    assert "photos/s" not in tiny.line()
    real = IndexSummary(new=200, classified=201, failed=1, seconds=20.0, classify_seconds=10.05)
    assert real.line().endswith("(201 classified, 20.0 photos/s)")


def test_no_faces_line_when_no_photo_was_looked_at(tmp_path, capsys):
    """Issue 26 item 2: the README's Ray example (and every re-index with nothing new) printed
    "wanwu: faces: 0 in 0 photo(s); 0 new person(s)"."""
    from wanwu.cli.people import index_faces
    from wanwu.library.catalogue import open_catalogue

    conn = open_catalogue(tmp_path / "library.db")
    try:
        failures, touched = index_faces(conn, None, [str(tmp_path)], progress=False, stopping=lambda: False)
    finally:
        conn.close()
    assert (failures, touched) == ([], [])
    assert "faces:" not in capsys.readouterr().err
