"""``wanwu classify --lang`` (default from the locale), CJK-aligned tables, readable JSON, and
``wanwu labels``."""

from __future__ import annotations

import csv
import io
import json

import pytest

from wanwu import cli
from wanwu.textwidth import display_width, ljust

CATS_ZH = {"虎斑猫", "条纹猫", "埃及猫"}


@pytest.fixture(autouse=True)
def _no_locale(monkeypatch):
    for name in ("LC_ALL", "LC_MESSAGES", "LANG", "WANWU_LANG"):
        monkeypatch.delenv(name, raising=False)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_display_width_counts_wide_characters_twice():
    assert display_width("tabby") == 5 and display_width("虎斑猫") == 6 and display_width("ＣＤ") == 4
    assert display_width(ljust("猫", 5)) == 5 and ljust("tabby", 3) == "tabby"


def test_classify_json_in_chinese_is_readable_utf8(capsys, chelsea):
    status, out, _ = run(capsys, "classify", str(chelsea), "--lang", "zh", "--format", "json", "-q")
    assert status == 0
    assert "\\u" not in out  # ensure_ascii=False
    body = json.loads(out)
    assert body["lang"] == "zh"
    top = body["results"][0]["predictions"][0]
    assert top["label"] == top["label_zh"] in CATS_ZH and top["label_en"] in {"tabby", "tiger cat", "Egyptian cat"}


def test_classify_language_follows_the_locale_and_the_flag_wins(capsys, monkeypatch, chelsea):
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    _, out, _ = run(capsys, "classify", str(chelsea), "-f", "jsonl", "-k", "1")
    assert json.loads(out)["predictions"][0]["label"] in CATS_ZH
    _, out, _ = run(capsys, "classify", str(chelsea), "-f", "jsonl", "-k", "1", "--lang", "en")
    assert json.loads(out)["predictions"][0]["label"] in {"tabby", "tiger cat", "Egyptian cat"}
    monkeypatch.setenv("WANWU_LANG", "en")
    _, out, _ = run(capsys, "classify", str(chelsea), "-f", "jsonl", "-k", "1")
    assert json.loads(out)["predictions"][0]["label"] in {"tabby", "tiger cat", "Egyptian cat"}


def test_classify_table_in_chinese_aligns_wide_characters(capsys, coffee):
    status, out, _ = run(capsys, "classify", str(coffee), "--lang", "zh")
    assert status == 0
    verdict, *rows = out.splitlines()[1:]
    assert verdict.startswith("  = 可能是意式浓缩咖啡（")  # the tag policy's verdict, then the raw top-k
    assert "意式浓缩咖啡" in rows[0] and "espresso" in rows[0]
    # the English and wnid columns start at the same terminal column on every row
    starts = {display_width(r[: r.index(r.split()[2])]) for r in rows}
    wnid_starts = {display_width(r[: r.index("n0")]) for r in rows}
    assert len(starts) == 1 and len(wnid_starts) == 1


def test_classify_csv_has_both_names(capsys, chelsea):
    _, out, _ = run(capsys, "classify", str(chelsea), "-f", "csv", "-k", "1", "--lang", "zh")
    assert out.startswith("\ufeff")  # the BOM Excel needs to read UTF-8 (wanwu.csv_out)
    [row] = list(csv.DictReader(io.StringIO(out)))
    assert row["label"] == row["label_zh"] in CATS_ZH and row["label_en"]


def test_unknown_language_is_a_usage_error(capsys, chelsea):
    with pytest.raises(SystemExit) as exc:
        cli.main(["classify", str(chelsea), "--lang", "fr"])
    assert exc.value.code == 2 and "en or zh" in capsys.readouterr().err


# --- wanwu labels --------------------------------------------------------------------------
def test_labels_lists_all_classes_as_tsv(capsys):
    status, out, _ = run(capsys, "labels", "--format", "tsv")
    rows = list(csv.DictReader(io.StringIO(out), delimiter="\t"))
    assert status == 0 and len(rows) == 1000
    assert rows[673]["label_en"] == "mouse" and rows[673]["label_zh"] == "鼠标"
    assert rows[207]["groups"].split(",")[:2] == ["retriever", "dog"]


def test_labels_for_a_group_name_in_chinese(capsys):
    status, out, _ = run(capsys, "labels", "狗", "--lang", "zh", "--format", "json")
    body = json.loads(out)
    assert status == 0 and len(body) == 118 and body[0]["label"] == body[0]["label_zh"] == "吉娃娃"


def test_labels_groups(capsys):
    _, out, _ = run(capsys, "labels", "--groups", "-f", "json")
    groups = {g["key"]: g for g in json.loads(out)}
    assert len(groups) >= 60 and groups["dog"]["label_zh"] == "狗" and len(groups["dog"]["wnids"]) == 118
    _, out, _ = run(capsys, "labels", "--groups", "猫", "--lang", "zh")
    assert "虎斑猫" in out and "tabby" in out


def test_labels_unknown_name_says_what_to_do(capsys):
    status, _, err = run(capsys, "labels", "gold fish")
    assert status == 2 and "goldfish" in err and "wanwu labels" in err
