"""Simple story clustering methods to compare against, each on the same texts and the same vectors.

Run one method per process so its peak memory is its own:

    python -m bench.baselines hdbscan-3 ../shared/data/ecbplus --vectors ecbplus.npy

prints one JSON object: the method's cluster seconds and a label per item (in docs.jsonl order).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from bench.common import load_set


def minhash_components(texts: list[str], vectors: np.ndarray) -> np.ndarray:
    """(a) MinHash LSH near-duplicate pairs (our default shingles and threshold), connected components."""
    from pipeline.config import NearDuplicateConfig
    from pipeline.dedup import find_near_duplicates

    found = find_near_duplicates(texts, [str(hash(t)) for t in texts], NearDuplicateConfig())
    return found.group


def cosine_components(texts: list[str], vectors: np.ndarray, threshold: float = 0.7) -> np.ndarray:
    """(b) Every pair with cosine >= threshold is an edge; stories are the connected components."""
    n = len(vectors)
    rows, cols = [], []
    for start in range(0, n, 2048):
        block = vectors[start : start + 2048] @ vectors.T
        r, c = np.nonzero(block >= threshold)
        rows.append(r + start)
        cols.append(c)
    edges = sparse.coo_matrix(
        (np.ones(sum(len(r) for r in rows)), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    return connected_components(edges, directed=False)[1]


def plain_hdbscan(texts: list[str], vectors: np.ndarray, min_cluster_size: int) -> np.ndarray:
    """(c) HDBSCAN on the vectors (euclidean on unit vectors); each noise item is its own story."""
    import hdbscan

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = hdbscan.HDBSCAN(min_cluster_size=min_cluster_size).fit_predict(vectors)
    return singletons_for_noise(labels)


def bertopic(texts: list[str], vectors: np.ndarray, min_topic_size: int = 2) -> np.ndarray:
    """(d) BERTopic with its defaults (UMAP + HDBSCAN) on the precomputed vectors; outliers alone."""
    from bertopic import BERTopic

    topics, _ = BERTopic(min_topic_size=min_topic_size).fit_transform(texts, embeddings=vectors)
    return singletons_for_noise(np.asarray(topics))


def singletons_for_noise(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels).copy()
    noise = np.flatnonzero(labels < 0)
    labels[noise] = labels.max(initial=-1) + 1 + np.arange(len(noise))
    return labels


METHODS: dict[str, tuple[str, Callable[[list[str], np.ndarray], np.ndarray]]] = {
    "minhash-lsh-cc": ("MinHash LSH + connected components", minhash_components),
    "cosine-0.7-cc": ("cosine >= 0.7, connected components", cosine_components),
    "hdbscan-2": ("plain HDBSCAN, min_cluster_size 2", lambda t, v: plain_hdbscan(t, v, 2)),
    "hdbscan-3": ("plain HDBSCAN, min_cluster_size 3", lambda t, v: plain_hdbscan(t, v, 3)),
    "bertopic-2": ("BERTopic, min_topic_size 2", bertopic),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("method", choices=sorted(METHODS))
    parser.add_argument("data", type=Path, help="folder with docs.jsonl")
    parser.add_argument("--vectors", type=Path, required=True, help=".npy unit vectors, one row per item")
    args = parser.parse_args()
    texts = load_set(args.data).texts
    vectors = np.load(args.vectors)
    start = time.perf_counter()
    labels = METHODS[args.method][1](texts, vectors)
    seconds = time.perf_counter() - start
    print(json.dumps({"method": args.method, "cluster_seconds": round(seconds, 2), "labels": [int(x) for x in labels]}))


if __name__ == "__main__":
    main()
