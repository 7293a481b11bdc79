"""Near-duplicates stage: exact copies by content hash, copies and light rewrites by MinHash LSH.

Wire copy and retitled syndication share most word shingles; LSH finds those pairs without comparing
every pair. The pairs (with their estimated Jaccard) are evidence for clustering, and the groups they form
are stored per member so a person can see why two items ended up together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from pipeline.config import NearDuplicateConfig

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass
class NearDuplicates:
    """Pairs (i < j) of near-duplicate items, their Jaccard estimate, and a group label per item."""

    pairs: np.ndarray  # (m, 2) int
    jaccard: np.ndarray  # (m,) float32
    group: np.ndarray  # (n,) int: items with equal labels are near-duplicates (transitively)
    exact_groups: int


def shingles(text: str, size: int) -> set[bytes]:
    """Word n-gram shingles of lower-cased text (single words when the text is shorter than n)."""
    words = _WORD.findall(text.lower())
    if len(words) < size:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i : i + size]).encode() for i in range(len(words) - size + 1)}


def find_near_duplicates(texts: list[str], hashes: list[str], config: NearDuplicateConfig) -> NearDuplicates:
    """Group exact duplicates by hash and near-duplicates by MinHash LSH over word shingles."""
    from datasketch import MinHash, MinHashLSH

    n = len(texts)
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)

    first_by_hash: dict[str, int] = {}
    pairs: dict[tuple[int, int], float] = {}
    for i, digest in enumerate(hashes):
        if digest in first_by_hash:
            j = first_by_hash[digest]
            pairs[(j, i)] = 1.0
            union(j, i)
        else:
            first_by_hash[digest] = i
    exact_groups = sum(1 for i in range(n) if find(i) == i)

    lsh = MinHashLSH(threshold=config.threshold, num_perm=config.num_perm)
    signatures: dict[int, MinHash] = {}
    # The permutations depend only on the seed: draw them once, not once per item.
    template = MinHash(num_perm=config.num_perm, seed=1)
    for i in sorted(first_by_hash.values()):
        grams = shingles(texts[i], config.shingle_words)
        if not grams:
            continue
        signature = MinHash(
            num_perm=config.num_perm, seed=1, permutations=template.permutations, scheme=template.scheme
        )
        signature.update_batch(list(grams))
        for j in lsh.query(signature):
            jaccard = float(signature.jaccard(signatures[j]))
            if jaccard >= config.threshold:
                pairs[(min(i, j), max(i, j))] = jaccard
                union(i, j)
        lsh.insert(i, signature)
        signatures[i] = signature
    # Copies of a representative inherit its near-duplicate pairs through the union-find groups.
    group = np.array([find(i) for i in range(n)], dtype=np.int64)
    ordered = sorted(pairs)
    return NearDuplicates(
        pairs=np.array(ordered, dtype=np.int64).reshape(-1, 2),
        jaccard=np.array([pairs[p] for p in ordered], dtype=np.float32),
        group=group,
        exact_groups=exact_groups,
    )
