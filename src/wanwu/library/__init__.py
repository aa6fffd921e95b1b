"""The photo catalogue: ``wanwu index`` and what builds on it (the Ray scale-out backend)."""
