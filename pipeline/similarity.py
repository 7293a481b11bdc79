"""Evidence stage: a sparse graph of candidate pairs, each with the signals that say "same event".

Candidates are each item's nearest neighbours by embedding plus the MinHash near-duplicate pairs, so the
cost grows with n·k, not n². For each pair:
- `embedding`: cosine of the sentence vectors (topic and paraphrase);
- `lexical`: TF-IDF cosine of the words, and `entity`: TF-IDF cosine of names and numbers (who, where,
  when: what tells two earthquakes or two summits apart), with term weights from a fixed reference (general
  English word frequencies), so a pair scores the same whatever else is in the batch;
- `evidence_weight`: how much the lexical signals count, by how much text both items have. Two retitled
  8-word headlines share few words by chance; two 300-word reports of one event share their names.
- `time_factor`: how well the dates of the two events agree (`date_agreement`, from `pipeline.eventdates`):
  1 within `time_scale_hours` or when a date is unknown, less the further apart; different dates are
  evidence against one event;
- `similarity`: the combination, and `density`: blended with shared-nearest-neighbour overlap, which
  makes a threshold mean the same thing in dense and sparse parts of the batch.
"""

from __future__ import annotations

import functools
import gc
import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
from scipy import sparse

from pipeline.config import ClusterConfig
from pipeline.dedup import NearDuplicates
from pipeline.eventdates import DateEvidence, date_evidence
from pipeline.stop_words import ENGLISH_STOP_WORDS
from pipeline.timeline import borrowed_dates, date_agreement

_TOKEN = re.compile(r"[^\W\d_][\w'’.-]*[^\W_]|\d[\d,.]*\d|\d|[^\W\d_]", re.UNICODE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n")

# A neighbour search under way (`neighbours_in_background`): called, it waits and hands over the lists once.
NeighbourSearch = Callable[[], tuple[np.ndarray, np.ndarray]]


@dataclass
class ItemFeatures:
    """Per-item inputs of the pair signals, kept so group-level averages can be computed exactly."""

    vectors: np.ndarray
    words: sparse.csr_matrix
    entities: sparse.csr_matrix
    richness: np.ndarray
    timestamps: np.ndarray  # publication, hours (NaN: unknown): the order of the news and the story window
    dates: DateEvidence  # the dates each item's event may have (`pipeline.eventdates`)
    # Each item as a group of one (`pipeline.cluster.groupsums.GroupSums.items`), made once: the cluster stage and the
    # headline stage's member rows both start from it.
    group_sums: Any = field(default=None, repr=False, compare=False)


@dataclass
class EvidenceGraph:
    """Candidate pairs (rows[k] < cols[k]) of a batch of `n` items, with one array per signal."""

    n: int
    rows: np.ndarray
    cols: np.ndarray
    embedding: np.ndarray
    lexical: np.ndarray
    entity: np.ndarray
    jaccard: np.ndarray
    evidence_weight: np.ndarray
    time_factor: np.ndarray
    similarity: np.ndarray
    density: np.ndarray
    features: ItemFeatures

    def for_clustering(self) -> EvidenceGraph:
        """The graph as the cluster stage reads it: the pairs, their `density` and the items' features. The
        other signals (150 MB at 200k items, through the whole cluster stage) are left empty: they are what
        `storyclust explain` shows, from a graph of its own."""
        empty = _empty()
        return replace(
            self,
            embedding=empty,
            lexical=empty,
            entity=empty,
            jaccard=empty,
            evidence_weight=empty,
            time_factor=empty,
            similarity=empty,
        )

    def matrix(self, values: np.ndarray) -> sparse.csr_matrix:
        """A symmetric sparse n×n matrix of one signal, as `upper + upper.T` gives it (indices sorted, zeros
        left out): built from both halves at once, one conversion instead of three."""
        return symmetric_matrix(self.n, self.rows, self.cols, values)


def symmetric_matrix(n: int, rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> sparse.csr_matrix:
    """`upper + upper.T` of the pairs (rows[k] < cols[k], each pair once) as CSR: the same entries (a sum of
    0 is left out, a NaN kept), indices sorted in each row; one conversion of both halves instead of two
    and a sum, in no more memory (the halves go straight into 32-bit index arrays when n allows)."""
    kept = values != 0
    if not kept.all():
        rows, cols, values = rows[kept], cols[kept], values[kept]
    m = len(values)
    index = np.int32 if 2 * m < 2**31 and n < 2**31 else np.int64
    both_rows, both_cols = np.empty(2 * m, dtype=index), np.empty(2 * m, dtype=index)
    both_rows[:m], both_rows[m:] = rows, cols
    both_cols[:m], both_cols[m:] = cols, rows
    both = sparse.coo_matrix((np.concatenate([values, values]), (both_rows, both_cols)), shape=(n, n))
    return both.tocsr()


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector paused, then resumed as it was. The evidence, the linkage and the member
    rows make millions of small lists, tuples and dicts, none in a cycle, and each time they add up to a
    quarter of the live objects the collector walks every object of the run (about 1 s per stage at 200k
    items)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@functools.lru_cache(maxsize=1 << 18)
def entity_tokens(text: str) -> tuple[str, ...]:
    """Names and numbers: capitalised words not opening a sentence, and digits (years, counts, dates).

    Kept for recent texts: the evidence, the headline and the member rows all read them, and a stream
    repeats its wire copies.
    """
    tokens: list[str] = []
    for sentence in _SENTENCE.split(text):
        for position, word in enumerate(_TOKEN.findall(sentence)):
            if word[0].isdigit():
                tokens.append(word.replace(",", ""))
            elif position > 0 and word[0].isupper() and word.lower() not in ENGLISH_STOP_WORDS:
                tokens.append(word.lower())
    return tuple(tokens)


def nearest_neighbours(vectors: np.ndarray, k: int, exact_up_to: int = 10000) -> tuple[np.ndarray, np.ndarray]:
    """Top-k cosine neighbours (excluding self) of unit vectors: exact for small batches, else HNSW.

    Exact search costs n² dot products and a top-k over them: 9 s at 20k items on 2 cores, minutes at 200k; the
    HNSW graph (faiss) grows as n·log n and finds nearly all of the same neighbours.
    """
    if len(vectors) > exact_up_to:
        return approximate_neighbours(vectors, k)
    return exact_neighbours(vectors, k)


def neighbours_in_background(vectors: np.ndarray, config: ClusterConfig) -> NeighbourSearch:
    """`nearest_neighbours` of a batch on a thread of its own, started before the work that does not need them;
    the function returned waits for the lists and hands them over, once, keeping no reference to them (70 MB at
    200k items, gone before the pair signals are computed, as from a search in line).

    faiss builds and searches its graph without holding the GIL, so on a second core the HNSW build (7 s at
    200k items, on one thread so that the graph never depends on the thread count) runs while this thread
    finds the near-duplicates and counts the words. The lists are the ones a call here gives.
    """
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="neighbours")
    try:
        pending = [executor.submit(nearest_neighbours, vectors, config.neighbours, config.exact_neighbours_up_to)]
    finally:
        executor.shutdown(wait=False)  # the thread ends with its one search
    return lambda: pending.pop().result()


def approximate_neighbours(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k neighbours from an HNSW index (faiss) built on the distinct vectors.

    A stream repeats texts (wire copies, re-runs): HNSW built over the 200k-item bench stream with its
    copies took 17.5 s against 8 s for its 102k distinct vectors. A copy's first neighbour is the first
    item with its vector, then the neighbours of that vector; the others list the distinct neighbours.
    """
    n = len(vectors)
    k = min(k, n - 1)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    # Identical vectors have identical projections; distinct ones all but never do (and then only share lists).
    projection = _projection(vectors, np.random.default_rng(0).normal(size=vectors.shape[1]))
    _, first, inverse = np.unique(projection, return_index=True, return_inverse=True)
    if len(first) <= k + 1:  # too few distinct vectors for a graph: plain exact search
        return exact_neighbours(vectors, k)
    found, sims = _hnsw_neighbours(vectors[first], k)
    found, sims = first[found[inverse]], sims[inverse]
    copy = np.flatnonzero(first[inverse] != np.arange(n))
    if len(copy):
        original = first[inverse[copy]]
        found[copy] = np.column_stack([original, found[copy, :-1]])
        sims[copy] = np.column_stack([pair_cosines(vectors, copy, original), sims[copy, :-1]])
    return found, sims


_PROJECTION_ROWS = 8192  # rows cast to float64 at a time by `_projection`


def _projection(vectors: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """`vectors @ direction` (float64), a block of rows at a time: the float32 rows are cast to float64 a block at
    a time (the whole cast is a temporary of 600 MB at 200k items, and numpy's mixed-type product took 1.5 s
    where the blocks take 0.1). By einsum, not BLAS: its sums do not depend on how many threads BLAS has (a
    Ray worker has one CPU), and it needs no process-wide BLAS limit while the search runs beside other work."""
    out = np.empty(len(vectors), dtype=np.float64)
    for start in range(0, len(vectors), _PROJECTION_ROWS):
        block = vectors[start : start + _PROJECTION_ROWS].astype(np.float64)
        out[start : start + len(block)] = np.einsum("ij,j->i", block, direction)
    return out


def _hnsw_neighbours(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    n, dimension = vectors.shape
    index = faiss.IndexHNSWFlat(dimension, 16, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 40
    # Built on one thread: a parallel build inserts in an order that depends on the thread count, so the
    # graph, the neighbours and in the end the stories would differ between machines (and between a
    # local run and a Ray worker given one CPU). 95% of the neighbour lists were equal at 10k items.
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        index.add(vectors)
    finally:
        faiss.omp_set_num_threads(threads)
    index.hnsw.efSearch = max(48, k + 1)
    sims, found = index.search(vectors, k + 1)
    return _without_self(found, sims, k)


def _without_self(found: np.ndarray, sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k+1 hits less the item itself, wherever it ranks among copies of its own vector (or, when
    the search missed it, less the last hit); a missing hit (-1) becomes a self-pair, which the graph drops."""
    n = len(found)
    own = found == np.arange(n)[:, None]
    own[~own.any(axis=1), -1] = True
    own &= np.cumsum(own, axis=1) == 1
    found = np.where(found < 0, np.arange(n)[:, None], found)
    return found[~own].reshape(n, k), sims[~own].reshape(n, k).astype(np.float32)


def exact_neighbours(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k cosine neighbours (excluding self), most similar first.

    faiss's brute-force search: blocked products with a heap per query, where numpy's argpartition over full
    rows of scores took 0.9 s of a 6,366-headline run (0.3 s here)."""
    import faiss

    n = len(vectors)
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros((n, 0), dtype=np.int64), np.zeros((n, 0), dtype=np.float32)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    sims, found = faiss.knn(vectors, vectors, k + 1, metric=faiss.METRIC_INNER_PRODUCT)
    return _without_self(found, sims, k)


@collector_paused()
def build_graph(
    texts: list[str],
    vectors: np.ndarray,
    timestamps: np.ndarray,
    near_duplicates: NearDuplicates,
    config: ClusterConfig,
    dates: DateEvidence | None = None,
    neighbours: NeighbourSearch | None = None,
) -> EvidenceGraph:
    """Candidate pairs and their evidence for one batch (`timestamps` in hours, NaN when unknown).

    `dates` comes from `pipeline.eventdates.date_evidence`; without it, the publication dates alone.
    `neighbours`: the vectors' neighbour search, already under way (`neighbours_in_background`).
    """
    n = len(texts)
    if dates is None:
        published = [None if np.isnan(h) else datetime.fromtimestamp(h * 3600) for h in timestamps]
        dates = date_evidence([""] * n, published, config.time_scale_hours / 24)
    words_matrix, entity_matrix = _tfidf_matrices(texts)  # first: a neighbour search under way goes on meanwhile
    keys, embedding = _candidates(vectors, near_duplicates, config, neighbours)
    rows, cols = (keys // n).astype(np.int64), (keys % n).astype(np.int64)
    # The neighbour search already scored its pairs; only the other pairs need a dot product.
    missing = np.flatnonzero(np.isnan(embedding))
    embedding[missing] = pair_cosines(vectors, rows[missing], cols[missing])
    lexical = sparse_pair_products(words_matrix, rows, cols)
    entity = sparse_pair_products(entity_matrix, rows, cols)
    jaccard = np.zeros(len(rows), dtype=np.float32)
    if len(near_duplicates.pairs):
        dup_keys = near_duplicates.pairs[:, 0] * n + near_duplicates.pairs[:, 1]
        position = np.searchsorted(keys, dup_keys)
        jaccard[position] = near_duplicates.jaccard

    words = np.array([len(t.split()) for t in texts], dtype=np.float32)
    richness = np.minimum(1.0, words / config.full_text_words)
    pair_richness = (richness[rows], richness[cols])
    weight = lexical_share(pair_richness, config).astype(np.float32)

    def content_alone() -> np.ndarray:  # the pair scores without time: which dated report an undated one is most like
        return pair_score(embedding, lexical, entity, pair_richness, np.ones(len(rows)), config, jaccard)

    dates = borrowed_dates(dates, rows, cols, content_alone, config.merge_similarity)
    time_factor = date_agreement(dates, rows, cols)
    similarity = pair_score(embedding, lexical, entity, pair_richness, time_factor, config, jaccard).astype(np.float32)

    graph = EvidenceGraph(
        n=n,
        rows=rows,
        cols=cols,
        embedding=embedding,
        lexical=lexical,
        entity=entity,
        jaccard=jaccard,
        evidence_weight=weight,
        time_factor=time_factor,
        similarity=similarity,
        density=similarity,
        features=ItemFeatures(vectors, words_matrix, entity_matrix, richness.astype(np.float32), timestamps, dates),
    )
    graph.density = (0.5 * _shared_neighbours(graph, config.shared_neighbours) + 0.5 * similarity).astype(np.float32)
    return graph


def _candidates(
    vectors: np.ndarray,
    near_duplicates: NearDuplicates,
    config: ClusterConfig,
    search: NeighbourSearch | None = None,
) -> tuple[np.ndarray, ...]:
    """The candidate pairs, each once as a key `low·n + high` (sorted), and the cosine of those the neighbour
    search scored (NaN for the others). Its own function: the neighbour lists and the keys before
    deduplication (half a gigabyte at 200k items) are gone before the pair signals are computed."""
    n = len(vectors)
    if search is None:
        neighbours, neighbour_sims = nearest_neighbours(vectors, config.neighbours, config.exact_neighbours_up_to)
    else:
        neighbours, neighbour_sims = search()
    rows = np.concatenate([np.repeat(np.arange(n), neighbours.shape[1]), near_duplicates.pairs[:, 0]])
    cols = np.concatenate([neighbours.ravel(), near_duplicates.pairs[:, 1]])
    known = np.concatenate([neighbour_sims.ravel(), np.full(len(near_duplicates.pairs), np.nan, dtype=np.float32)])
    del neighbours, neighbour_sims
    low, high = np.minimum(rows, cols), np.maximum(rows, cols)
    del rows, cols
    keep = low != high
    keys, first = _unique_first(low[keep].astype(np.int64) * n + high[keep])
    return keys, known[keep][first].astype(np.float32)


def lexical_share(richness: tuple[np.ndarray, np.ndarray], config: ClusterConfig) -> np.ndarray:
    """How much word and name overlap counts in a pair: `lexical_weight` times the less rich side."""
    return config.lexical_weight * np.minimum(*richness)


def pair_score(
    embedding: np.ndarray,
    words: np.ndarray,
    names: np.ndarray,
    richness: tuple[np.ndarray, np.ndarray],
    dates: np.ndarray,
    config: ClusterConfig,
    copies: np.ndarray | None = None,
) -> np.ndarray:
    """The pair score, its one definition: the embedding cosine blended with word and name overlap by how
    much text both sides have, at least the MinHash Jaccard of near-copies (`copies`), times the date
    agreement. Between two groups (`cluster`) the same formula over group-averaged signals, without copies."""
    weight = lexical_share(richness, config)
    score = (1 - weight) * embedding + weight * (words + names) / 2
    if copies is not None:
        score = np.maximum(score, copies)
    return score * dates


def _unique_first(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`np.unique(keys, return_index=True)` for non-negative keys: the distinct keys, sorted, and where each
    first occurs. One sort of the keys with their positions packed into the low bits when both fit in 63
    bits (a third faster on the 6.6M candidate pairs of 200k items than numpy's stable argsort)."""
    bits = len(keys).bit_length()
    if not len(keys) or int(keys.max()) >> (63 - bits):
        return np.unique(keys, return_index=True)
    packed = np.sort((keys << bits) | np.arange(len(keys)))
    ordered = packed >> bits
    new = np.r_[True, ordered[1:] != ordered[:-1]]
    return ordered[new], packed[new] & ((1 << bits) - 1)


def pair_cosines(
    vectors: np.ndarray, rows: np.ndarray, cols: np.ndarray, chunk: int = 65536, col_vectors: np.ndarray | None = None
) -> np.ndarray:
    """Dot products of the listed pairs, a chunk at a time (gathering all pairs at once costs 2·pairs·d floats).

    `col_vectors`: the second of each pair from these rows instead.
    """
    col_vectors = vectors if col_vectors is None else col_vectors
    out = np.empty(len(rows), dtype=np.float32)
    for start in range(0, len(rows), chunk):
        end = start + chunk
        out[start:end] = np.einsum("ij,ij->i", vectors[rows[start:end]], col_vectors[cols[start:end]])
    return out


def _empty() -> np.ndarray:
    return np.zeros(0, dtype=np.float32)


def _tfidf_matrices(texts: list[str]) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """Row-normalised TF-IDF of words and of entity tokens, with term weights from a fixed reference.

    The weights come from general English word frequencies (wordfreq), not from the batch: a word weighs
    the same alone, in a firehose, in a run of five items or of 200k, so a pair's score never depends on
    what else arrived with it.
    """
    # Each distinct text once (a stream repeats its wire copies), then a row per item: the vocabulary, and
    # so every row, is the same as from all the texts (its terms in order of first appearance, then sorted).
    number = {text: k for k, text in enumerate(dict.fromkeys(texts))}
    distinct, rows = list(number), np.array([number[text] for text in texts], dtype=np.int64)
    matrices = []
    for tokens in (word_tokens, entity_tokens):
        counted = term_counts(map(tokens, distinct))
        if counted is None:  # no words (or no names) anywhere in the batch
            matrices.append(sparse.csr_matrix((len(texts), 1), dtype=np.float32))
            continue
        counts, terms = counted
        weights = term_weights(terms)
        counts.data = 1.0 + np.log(counts.data)
        weighted = (counts @ sparse.diags(weights)).tocsr()
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
        weighted = sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ weighted
        matrices.append(weighted.astype(np.float32).tocsr()[rows])
    return matrices[0], matrices[1]


_WORD = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token: two or more word characters


def word_tokens(text: str) -> list[str]:
    """The lower-cased words of a text, stop words left out, in order (scikit-learn's `CountVectorizer` words)."""
    return [word for word in _WORD.findall(text.lower()) if word not in ENGLISH_STOP_WORDS]


def term_counts(documents: Iterable[Iterable[str]]) -> tuple[sparse.csr_matrix, list[str]] | None:
    """How often each document has each term (float32), and the terms, sorted: None when no document has any.

    Exactly scikit-learn's `CountVectorizer.fit_transform`, down to the order of the entries in each row (by
    the term's first appearance in the batch, the column its rank in the sorted terms), so every float sum
    after it is the same; without importing scikit-learn, which imports the whole of it (1.3 s a run).
    """
    first_seen: dict[str, int] = {}
    indices: list[int] = []
    counts: list[int] = []
    indptr = [0]
    for document in documents:
        counter: dict[int, int] = {}
        for term in document:
            index = first_seen.setdefault(term, len(first_seen))
            counter[index] = counter.get(index, 0) + 1
        ordered = sorted(counter)
        indices += ordered
        counts += map(counter.__getitem__, ordered)
        indptr.append(len(indices))
    if not first_seen:
        return None
    terms = sorted(first_seen)
    rank = np.empty(len(terms), dtype=np.int64)
    rank[[first_seen[term] for term in terms]] = np.arange(len(terms))
    index_type = np.int32 if len(indices) <= np.iinfo(np.int32).max else np.int64  # as scikit-learn chooses
    matrix = sparse.csr_matrix(
        (np.array(counts, dtype=np.float32), rank[indices].astype(index_type), np.array(indptr, dtype=index_type)),
        shape=(len(indptr) - 1, len(terms)),
    )
    return matrix, terms


REFERENCE_CEILING = 7.0  # Zipf value (log10 per billion words) from which a word carries no weight


def term_weights(terms: np.ndarray | list[str]) -> np.ndarray:
    """Inverse reference frequency of each term: `REFERENCE_CEILING` − its Zipf frequency in English.

    "the" weighs 0, "police" 1.7, "shooting" 2.2, "Kokomo" 4.5, an unseen name or number 7.
    """
    return np.array([_term_weight(str(term)) for term in terms], dtype=np.float32)


@functools.lru_cache(maxsize=1 << 20)
def _term_weight(term: str) -> float:
    from wordfreq import zipf_frequency

    return max(0.0, REFERENCE_CEILING - zipf_frequency(term, "en"))


def sparse_pair_products(
    matrix: sparse.csr_matrix, rows: np.ndarray, cols: np.ndarray, chunk: int = 262144
) -> np.ndarray:
    """Row dot products of the listed pairs of a sparse matrix, a chunk of pairs at a time."""
    return sparse_cross_products(matrix, matrix, rows, cols, chunk)


def sparse_cross_products(
    left: sparse.csr_matrix, right: sparse.csr_matrix, rows: np.ndarray, cols: np.ndarray, chunk: int = 262144
) -> np.ndarray:
    """`left[rows[k]] · right[cols[k]]` for each listed pair, a chunk of pairs at a time."""
    out = np.empty(len(rows), dtype=np.float32)
    for start in range(0, len(rows), chunk):
        end = start + chunk
        out[start:end] = np.asarray(left[rows[start:end]].multiply(right[cols[start:end]]).sum(axis=1)).ravel()
    return out


def _shared_neighbours(graph: EvidenceGraph, k: int) -> np.ndarray:
    """For each pair, the overlap of the two items' top-k lists by similarity (self included), in [0, 1]."""
    n = graph.n
    if not len(graph.rows):
        return _empty()
    full = graph.matrix(graph.similarity).tocsr()
    top_rows, top_columns = _top_per_row(full, k)
    del full
    r = np.concatenate([top_rows, np.arange(n)])
    c = np.concatenate([top_columns, np.arange(n)])
    membership = sparse.csr_matrix((np.ones(len(r), dtype=np.float32), (r, c)), shape=(n, n))
    return sparse_pair_products(membership, graph.rows, graph.cols) / (k + 1)


_TOP_ROWS = 16384  # rows ranked at a time by `_top_per_row`


def _top_per_row(full: sparse.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the `k` entries of each row with the highest values (in [0, 1]; ties in stored
    order), row by row, most similar first: a stable sort by row + (1 − value)/2, the same keys as one sort
    of all entries, a block of rows at a time (the keys, positions and ranks of all 10M entries at 200k
    items were half a gigabyte at once)."""
    kept_rows, kept = [], []
    for first in range(0, full.shape[0], _TOP_ROWS):
        last = min(first + _TOP_ROWS, full.shape[0])
        low, high = full.indptr[first], full.indptr[last]
        rows = np.repeat(np.arange(first, last), np.diff(full.indptr[first : last + 1]))
        key = rows + (1.0 - np.clip(full.data[low:high].astype(np.float64), 0.0, 1.0)) * 0.5
        order = np.argsort(key, kind="stable")
        rank = np.arange(len(order)) - (full.indptr[rows[order]] - low)
        top = order[rank < k]
        kept_rows.append(rows[top])
        kept.append(full.indices[low + top])
    if not kept:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(kept_rows), np.concatenate(kept)


def item_evidence(
    items: list[Any],
    vectors: np.ndarray,
    near_duplicates: NearDuplicates,
    config: ClusterConfig,
    neighbours: NeighbourSearch | None = None,
) -> EvidenceGraph:
    """The evidence stage over articles (`pipeline.records.Article`): their event dates, then the graph
    (`neighbours`: the vectors' neighbour search, when already under way)."""
    hours = np.array([a.published_at.timestamp() / 3600 if a.published_at else np.nan for a in items])
    dates = date_evidence(
        [a.text for a in items], [a.published_at for a in items], config.time_scale_hours / 24, [a.title for a in items]
    )
    return build_graph([a.content for a in items], vectors, hours, near_duplicates, config, dates, neighbours)
