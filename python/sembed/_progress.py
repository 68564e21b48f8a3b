"""Progress bars, only when asked: tqdm when it is installed (as sentence-transformers and model2vec
draw them), else one line on stderr rewritten in place."""

from __future__ import annotations

import sys


class _Line:
    def __init__(self, total: int, desc: str) -> None:
        self.total, self.desc, self.n = total, desc, 0
        self._draw()

    def _draw(self) -> None:
        sys.stderr.write(f"\r{self.desc}: {self.n}/{self.total}")
        sys.stderr.flush()

    def update(self, n: int = 1) -> None:
        self.n += n
        self._draw()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()


def bar(total: int, desc: str):
    """A bar with ``update(n)`` and ``close()``."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _Line(total, desc)
    return tqdm(total=total, desc=desc)
