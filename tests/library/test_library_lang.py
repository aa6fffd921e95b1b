"""``wanwu library`` and ``wanwu tag`` speak one language at a time (issue 26 items 12 and 18):
the summary's headings in Chinese with ``--lang zh``, and a tag confirmation that names every
class in the language asked for ("+loggerhead -黄道蟹" mixed two)."""

from __future__ import annotations

from wanwu import cli


def test_library_summary_headings_in_chinese(indexed, capsys):
    _, db = indexed
    assert cli.main(["library", "--db", str(db), "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    headings = [line.split()[0] for line in out.splitlines()]
    assert headings[:3] == ["相册文件", "照片", "模型"] and "类别组" in headings
    assert "张失败" in out and "user tag" not in out and "photo(s)" not in out
    assert cli.main(["library", "--db", str(db), "--lang", "en"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()][:3] == ["catalogue", "photos", "model"]


def test_tag_confirmation_in_one_language(indexed, capsys):
    album, db = indexed
    photo = str(album / "kitchen" / "coffee.png")
    argv = ["tag", photo, "--add", "蠵龟", "--remove", "黄道蟹", "--add", "my cup", "--db", str(db)]
    assert cli.main([*argv, "--lang", "zh"]) == 0
    assert capsys.readouterr().out.strip() == f"{photo}: -黄道蟹（没有这个标签） +蠵龟 +my cup"
    assert cli.main([*argv, "--lang", "en"]) == 0
    assert capsys.readouterr().out.strip() == f"{photo}: -rock crab (no such tag) +loggerhead +my cup"


def test_tag_says_a_photo_is_not_catalogued_in_chinese(indexed, tmp_path, capsys):
    _, db = indexed
    assert cli.main(["tag", str(tmp_path / "elsewhere.jpg"), "--add", "x", "--db", str(db), "--lang", "zh"]) == 1
    assert "不在相册中" in capsys.readouterr().err
