#!/usr/bin/env python3
"""Regenerate ``src/wanwu/data/imagenet1k-wordnet.json`` from the WordNet hierarchy.

Inputs: the hierarchy TSV (default ``../shared/imagenet1k-hierarchy.tsv``: wnid, parents, leaf flag,
synonyms; from ImageNet's ``wordnet.is_a.txt`` / ``words.txt``), the class table and the hand-written
group definitions (``data/label-groups.tsv``). Output: each class's WordNet synonyms and, per group,
its nodes' synonyms and member classes (every class under any of its nodes, as class-index ranges).
wanwu reads only the output at run time; run this again after editing ``label-groups.tsv``:

    python scripts/build_label_groups.py [--hierarchy PATH]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "src" / "wanwu" / "data"
# ../shared next to the checkout (or next to the folder of git worktrees)
DEFAULT_HIERARCHY = (
    next((p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if p.is_dir()), ROOT.parent / "shared")
    / "imagenet1k-hierarchy.tsv"
)


def read_tsv(path: Path) -> list[list[str]]:
    lines = path.read_text("utf-8").splitlines()
    return [line.split("\t") for line in lines if line.strip() and not line.startswith("#")]


def read_hierarchy(path: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """``children`` and ``synonyms`` of every node."""
    children: dict[str, list[str]] = defaultdict(list)
    synonyms: dict[str, list[str]] = {}
    for wnid, parents, _leaf, words in read_tsv(path):
        synonyms[wnid] = [w.strip() for w in words.split(",") if w.strip()]
        for parent in filter(None, parents.split(",")):
            children[parent].append(wnid)
    return children, synonyms


def descendants(node: str, children: dict[str, list[str]]) -> set[str]:
    seen, stack = {node}, [node]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return seen


def ranges(indices: list[int]) -> str:
    """[1, 2, 3, 7] -> "1-3,7"."""
    runs: list[list[int]] = []
    for i in sorted(indices):
        if runs and runs[-1][1] == i - 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def useful(word: str, own: str) -> bool:
    """A synonym worth looking up: not the name itself, not ImageNet's ``crane2`` disambiguation."""
    return word.lower() != own.lower() and not re.search(r"\d$", word)


def build(hierarchy: Path) -> dict:
    children, synonyms = read_hierarchy(hierarchy)
    classes = read_tsv(DATA / "imagenet1k-classes.tsv")
    index = {row[0]: i for i, row in enumerate(classes)}
    missing = [w for w in index if w not in synonyms]
    if missing:
        sys.exit(f"{hierarchy} lacks {len(missing)} of the 1000 classes, e.g. {missing[:3]}")
    class_synonyms = {wnid: [w for w in synonyms[wnid] if useful(w, en)] for wnid, en, *_ in classes}
    groups = {}
    for key, en, _zh, _aliases, nodes in read_tsv(DATA / "label-groups.tsv"):
        members: set[str] = set()
        words: list[str] = []
        for node in nodes.split(","):
            if node not in synonyms:
                sys.exit(f"group {key}: {node} is not in {hierarchy}")
            members |= descendants(node, children)
            words += [w for w in synonyms[node] if useful(w, en) and w not in words]
        indices = [index[w] for w in members if w in index]
        if not indices:
            sys.exit(f"group {key}: no ImageNet-1k class under {nodes}")
        groups[key] = {"synonyms": words, "classes": ranges(indices)}
    return {
        "about": "Derived by scripts/build_label_groups.py from the WordNet hierarchy; do not edit by hand.",
        "class_synonyms": {w: s for w, s in class_synonyms.items() if s},
        "groups": groups,
    }


def to_json(data: dict) -> str:
    """JSON with one class or group per line (readable diffs when a group changes)."""

    def block(mapping: dict) -> str:
        return (
            "{\n"
            + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in mapping.items())
            + "\n }"
        )

    return (
        f'{{"about": {json.dumps(data["about"])},\n "class_synonyms": {block(data["class_synonyms"])},\n'
        f' "groups": {block(data["groups"])}\n}}\n'
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hierarchy", type=Path, default=DEFAULT_HIERARCHY, help=f"default: {DEFAULT_HIERARCHY}")
    ap.add_argument("--out", type=Path, default=DATA / "imagenet1k-wordnet.json")
    args = ap.parse_args()
    data = build(args.hierarchy)
    text = to_json(data)
    args.out.write_text(text, "utf-8")
    print(f"wrote {args.out} ({len(data['groups'])} groups, {len(text) // 1024} KiB)", file=sys.stderr)


if __name__ == "__main__":
    main()
