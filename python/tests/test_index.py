"""sembed.Index and sembed.EmbeddingCache from Python."""

from __future__ import annotations

import os

import numpy as np
import pytest

import sembed


@pytest.fixture()
def tree(tmp_path):
    root = tmp_path / "notes"
    root.mkdir()
    (root / "guitar.md").write_text("# Music\n\nI practise the guitar every evening after work.\n")
    (root / "parking.md").write_text("# Car\n\nThe car is parked on level 3 of the garage, spot 42.\n")
    (root / "budget.txt").write_text("The quarterly budget was approved by the board on Tuesday.\n")
    (root / ".gitignore").write_text("secret.txt\n")
    (root / "secret.txt").write_text("the car is parked here too\n")
    return root


def test_index_update_search_and_incremental(tmp_path, tree, builtin):
    index = sembed.Index(tmp_path / "index.sqlite", builtin)
    first = index.update([tree])
    assert first["seen"] == 3 and first["changed"] == 3 and first["embedded"] >= 3
    hits = index.search("where did I leave my car", top_k=2, mode="semantic")
    assert os.path.basename(hits[0]["path"]) == "parking.md"
    assert hits[0]["start_line"] == 1 and hits[0]["cosine"] > 0.3 and "garage" in hits[0]["text"]
    assert not any("secret" in h["path"] for h in index.search("car parked", top_k=10))
    # Nothing changed: nothing embedded.
    again = index.update([tree])
    assert again["changed"] == 0 and again["embedded"] == 0
    # One file changed, one deleted.
    (tree / "guitar.md").write_text("# Music\n\nI play the piano on Sundays.\n")
    (tree / "budget.txt").unlink()
    third = index.update([tree])
    assert third["changed"] == 1 and third["deleted"] == 1 and third["embedded"] >= 1
    lexical = index.search("piano", mode="lexical")
    assert [os.path.basename(h["path"]) for h in lexical] == ["guitar.md"]
    assert index.search("quarterly budget", mode="lexical") == []
    stats = index.stats()
    assert stats["collections"][0]["docs"] == 2 and stats["collections"][0]["dim"] == 384
    with pytest.raises(ValueError, match="mode"):
        index.search("x", mode="fuzzy")


def test_index_items(tmp_path, builtin):
    index = sembed.Index(tmp_path / "items.sqlite", builtin)
    report = index.add({"a": "The cat sat on the mat.", "b": "Interest rates rose again."})
    assert report["embedded"] == 2
    assert index.search("feline", mode="semantic", top_k=1)[0]["path"] == "a"
    assert index.add([("a", "The cat sat on the mat.")])["embedded"] == 0
    assert index.remove(["a", "zzz"]) == 1
    assert [h["path"] for h in index.search("cat", mode="semantic")] == ["b"]


def test_index_is_shared_with_the_cli_layout(tmp_path, tree, builtin):
    """A second Index object on the same file (as a second process would) sees the first's work."""
    sembed.Index(tmp_path / "i.sqlite", builtin).update([tree])
    other = sembed.Index(tmp_path / "i.sqlite", sembed.SentenceTransformer("builtin"))
    assert other.update([tree])["embedded"] == 0


def test_embedding_cache(tmp_path, builtin):
    texts = ["first text", "second text", "third"]
    cache = sembed.EmbeddingCache(tmp_path / "cache.sqlite", builtin, normalize_embeddings=True)
    a = cache.encode(texts)
    assert (cache.hits, cache.misses) == (0, 3)
    b = cache.encode(texts[:2] + ["new"])
    assert (cache.hits, cache.misses) == (2, 4)
    np.testing.assert_array_equal(a[:2], b[:2])
    np.testing.assert_allclose(a, builtin.encode(texts, normalize_embeddings=True), atol=1e-6)
    assert cache.encode("third").shape == (384,)
    static = sembed.EmbeddingCache(tmp_path / "c2.sqlite", sembed.StaticModel.from_pretrained(__import__("conftest").DATA / "m2v-minilm-256"))
    assert static.bypassed
