"""``wanwu library``'s summary as a person reads it, in English or Chinese: the headings and
their lines, one table per language (``export.summary`` gives the numbers; ``--format json``
prints those, with English keys, for scripts)."""

from __future__ import annotations

from ..textwidth import ljust

HEADING_WIDTH = 12  # the English headings' column; Chinese ones are padded to the same display width

TEXT = {
    "en": {
        "catalogue": "catalogue",
        "photos": "photos",
        "model": "model",
        "groups": "groups",
        "labels": "labels",
        "photos_line": "{photos} ({size} on disk), {failed} failed{failed_hint}, {user_tags} user tag(s)",
        "model_line": "{tagger}: {n} photo(s)",
        "failed_hint": " (wanwu library --failed lists them)",
        "separator": ", ",
    },
    "zh": {
        "catalogue": "相册文件",
        "photos": "照片",
        "model": "模型",
        "groups": "类别组",
        "labels": "类别",
        "photos_line": "{photos} 张（磁盘上 {size}），{failed} 张失败{failed_hint}，{user_tags} 个用户标签",
        "model_line": "{tagger}：{n} 张",
        "failed_hint": "（wanwu library --failed 列出它们）",
        "separator": "，",
    },
}


def summary_lines(info: dict, size: str, catalogue_size: str, lang: str = "en") -> list[str]:
    """The lines of the summary ``info`` (``export.summary``), with its two sizes already
    written out, in ``lang``."""
    text = TEXT.get(lang, TEXT["en"])

    def line(heading: str, body: str) -> str:
        return ljust(text[heading], HEADING_WIDTH) + body

    out = [
        line("catalogue", f"{info['catalogue']} ({catalogue_size})"),
        line(
            "photos",
            text["photos_line"].format(size=size, failed_hint=text["failed_hint"] if info["failed"] else "", **info),
        ),
    ]
    out += [line("model", text["model_line"].format(tagger=t, n=n)) for t, n in info["models"].items()]
    for heading in ("groups", "labels"):
        if info[heading]:
            out.append(line(heading, text["separator"].join(f"{x['label']} {x['count']}" for x in info[heading])))
    return out
