"""The generated photo collection's layout and helpers, shared by the library tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

LAYOUT = {  # path in the album -> test photo
    "cats/chelsea.png": "chelsea.png",
    "cats/2024/chelsea-again.png": "chelsea.png",  # a duplicate: same bytes
    "kitchen/coffee.png": "coffee.png",
    "space/rocket.jpg": "rocket.jpg",
    "people/grace_hopper.jpg": "grace_hopper.jpg",
    "travel/2019/summer/china.jpg": "china.jpg",
    "travel/flower.jpg": "flower.jpg",
    "bikes/motorcycle.png": "motorcycle_left.png",
    ".hidden/chelsea.png": "chelsea.png",  # hidden folders are skipped
}
CORRUPT = "travel/broken.jpg"
CATS = {"n02124075", "n02123159", "n02123045"}  # Egyptian cat, tiger cat, tabby


def digest_tree(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` except sidecars: proof the photos were not written."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix != ".xmp"
    }
