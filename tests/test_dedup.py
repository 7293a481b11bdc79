"""Near-duplicates: the batch signatures and LSH pairs are datasketch's own, computed in bulk."""

from __future__ import annotations

import numpy as np
from datasketch import MinHash, MinHashLSH

from pipeline.config import NearDuplicateConfig
from pipeline.dedup import candidate_pairs, find_near_duplicates, shingles, signatures

TEXTS = [
    "Ukraine Defense Contact Group meets in Brussels as allies pledge new air defence",
    "Ukraine Defense Contact Group meets in Brussels as allies pledge more air defence",
    "Allies pledge new air defence as Ukraine Defense Contact Group meets in Brussels",
    "NATO summit in Washington marks the alliance's 75th anniversary",
    "Fed raises rates",
    "",
    "Ukraine Defense Contact Group meets in Brussels as allies pledge new air defence",
]


def datasketch_minhash(text: str, config: NearDuplicateConfig) -> MinHash:
    minhash = MinHash(num_perm=config.num_perm, seed=1)
    minhash.update_batch(list(shingles(text, config.shingle_words)))
    return minhash


def test_signatures_equal_datasketch_minhash() -> None:
    config = NearDuplicateConfig()
    signature, has_shingles = signatures(TEXTS, config)
    assert list(has_shingles) == [bool(t) for t in TEXTS]
    for text, row in zip(TEXTS, signature, strict=True):
        if text:
            assert np.array_equal(row, datasketch_minhash(text, config).hashvalues)


def test_candidate_pairs_equal_datasketch_lsh() -> None:
    config = NearDuplicateConfig()
    texts = [t for t in TEXTS if t]
    signature, _ = signatures(texts, config)
    lsh = MinHashLSH(threshold=config.threshold, num_perm=config.num_perm)
    expected = set()
    for i, text in enumerate(texts):
        minhash = datasketch_minhash(text, config)
        expected |= {(j, i) for j in lsh.query(minhash)}
        lsh.insert(i, minhash)
    assert {tuple(p) for p in candidate_pairs(signature, config).tolist()} == expected


def test_near_duplicate_groups_and_exact_copies() -> None:
    found = find_near_duplicates(TEXTS, [str(hash(t)) for t in TEXTS], NearDuplicateConfig())
    assert found.group[0] == found.group[1] == found.group[6] == 0
    assert found.group[3] != found.group[0] and found.group[4] not in (found.group[0], found.group[3])
    assert found.exact_groups == 6
    pairs = {tuple(p): j for p, j in zip(found.pairs.tolist(), found.jaccard.tolist(), strict=True)}
    assert pairs[(0, 6)] == 1.0 and 0.5 <= pairs[(0, 1)] < 1.0


def test_cached_signatures_give_the_same_groups() -> None:
    config = NearDuplicateConfig()
    hashes = [str(hash(t)) for t in TEXTS]
    computed, _ = signatures(TEXTS, config)
    fresh = find_near_duplicates(TEXTS, hashes, config)
    cached = find_near_duplicates(TEXTS, hashes, config, computed)
    assert np.array_equal(fresh.pairs, cached.pairs) and np.array_equal(fresh.group, cached.group)
