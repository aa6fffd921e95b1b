"""The 1000 ImageNet-1k classes: wnid and short name (as torchvision names them), in class-index
order. Class index == position of the wnid in sorted wnid order. One source of truth."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import NamedTuple


class ImageNetClass(NamedTuple):
    index: int
    wnid: str
    label: str


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[ImageNetClass, ...]:
    text = resources.files("wanwu").joinpath("data/imagenet1k-classes.tsv").read_text("utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line.strip()]
    classes = tuple(ImageNetClass(i, wnid, label) for i, (wnid, label) in enumerate(rows))
    if len(classes) != 1000 or [c.wnid for c in classes] != sorted(c.wnid for c in classes):
        raise RuntimeError("wanwu's ImageNet class table is damaged (expected 1000 sorted wnids)")
    return classes


@lru_cache(maxsize=1)
def wnid_to_index() -> dict[str, int]:
    return {c.wnid: c.index for c in imagenet_classes()}
