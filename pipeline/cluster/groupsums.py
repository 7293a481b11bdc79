"""Group sums: per-group sums of the item features, enough to average any pair signal over two whole groups.

Cosine, TF-IDF products and the date agreement's directions are bilinear, so the mean over all |A|·|B|
member pairs of two groups is a product of the groups' sums divided by |A|·|B|: the merge compares whole
stories without listing their member pairs, and a union's sums are the sums of its parts.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from scipy import sparse

from pipeline.config import ClusterConfig
from pipeline.eventdates import CHANNELS, DateEvidence
from pipeline.similarity import ItemFeatures, pair_cosines, pair_score


@dataclass
class GroupSums:
    """Per-group sums of the item features: enough to average any pair signal over two whole groups.

    Every field is a plain sum, so the sums of a union of groups are the sums of its groups (`combined`).
    The sparse features sit side by side in one matrix, `forward` = [words | names | date cover | date
    mass], and again in `backward` with the two date blocks swapped, so that one elementwise product of
    `forward[a]` and `backward[b]` holds every bilinear signal of the pair (a, b), both date directions
    included, and one sum per block adds them up (`_Layout.block_of`). Two sparse products per union
    instead of one per signal: the merge runs thousands of small steps.
    """

    sizes: np.ndarray
    vectors: np.ndarray
    richness_sums: np.ndarray
    dated: np.ndarray  # groups × date channels: how many members have a date there
    mentioned: np.ndarray  # the same for members whose dates are only mentions
    forward: sparse.csr_matrix | None  # None in sums that are only ever the right side of a pair
    backward: sparse.csr_matrix
    # [date cover | date mass] of the members whose dates are mentions (None: no item's are, as in a stream
    # of dated reports; then no step of the merge builds or multiplies them).
    mention_forward: sparse.csr_matrix | None
    mention_backward: sparse.csr_matrix | None
    layout: _Layout

    @classmethod
    def of(cls, features: ItemFeatures, labels: np.ndarray) -> GroupSums:
        return cls.items(features).combined(indicator(labels, int(labels.max(initial=-1) + 1)))

    @classmethod
    def items(cls, features: ItemFeatures) -> GroupSums:
        """Each item as a group of one (made once, kept in `features.group_sums`)."""
        if features.group_sums is None:
            features.group_sums = cls._of_items(features)
        return features.group_sums

    @classmethod
    def _of_items(cls, features: ItemFeatures) -> GroupSums:
        dates = features.dates
        layout = _Layout(features.words.shape[1], features.entities.shape[1], dates)
        mentions = sparse.diags(dates.mention.astype(np.float32))
        cover, mass = (mentions @ dates.cover).tocsr(), (mentions @ dates.mass).tocsr()
        mentioned = cover.nnz > 0
        return cls(
            sizes=np.ones(len(features.richness), dtype=np.float32),
            vectors=features.vectors,
            richness_sums=features.richness,
            dated=dates.known.astype(np.float64),
            mentioned=(dates.known & dates.mention[:, None]).astype(np.float64),
            forward=sparse.hstack([features.words, features.entities, dates.cover, dates.mass]).tocsr(),
            backward=sparse.hstack([features.words, features.entities, dates.mass, dates.cover]).tocsr(),
            mention_forward=sparse.hstack([cover, mass]).tocsr() if mentioned else None,
            mention_backward=sparse.hstack([mass, cover]).tocsr() if mentioned else None,
            layout=layout,
        )

    def _values(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "layout"}

    def minus(self, other: GroupSums) -> GroupSums:
        """Row by row, these sums less the other's (a group without some of its members)."""
        values = {k: v if v is None else v - getattr(other, k) for k, v in self._values().items()}
        return GroupSums(**{k: v.tocsr() if sparse.issparse(v) else v for k, v in values.items()}, layout=self.layout)

    def select(self, groups: np.ndarray) -> GroupSums:
        """The sums of these groups only, in this order."""
        values = {k: v if v is None else v[groups] for k, v in self._values().items()}
        return GroupSums(**values, layout=self.layout)

    def combined(
        self,
        membership: sparse.csr_matrix,
        vectors: bool = True,
        sparse_rows: np.ndarray | None = None,
        left_side: bool = True,
    ) -> GroupSums:
        """Sums of unions of groups: row k of `membership` marks the groups of union k. For `StoryRows`:
        `vectors` False leaves the summed vectors out (a matrix of no columns), and `sparse_rows` gives the
        sparse sums of these unions only (each row of a product is its own sum, the same either way).
        `left_side` False: sums that are only ever the right side of a pair (`member_fit`'s groups), without
        the `forward` sums no pair reads."""
        sparse_membership = membership if sparse_rows is None else membership[sparse_rows]

        def total(matrix: sparse.csr_matrix | None) -> sparse.csr_matrix | None:
            if matrix is None:
                return None
            if not matrix.nnz:  # e.g. no mentions among these groups: skip the product
                return sparse.csr_matrix((sparse_membership.shape[0], matrix.shape[1]), dtype=matrix.dtype)
            return _sparse_product(sparse_membership, matrix)

        return GroupSums(
            sizes=membership @ self.sizes,
            vectors=membership @ self.vectors if vectors else np.zeros((membership.shape[0], 0), self.vectors.dtype),
            richness_sums=membership @ self.richness_sums,
            dated=membership @ self.dated,
            mentioned=membership @ self.mentioned,
            forward=total(self.forward) if left_side else None,
            backward=total(self.backward),
            mention_forward=total(self.mention_forward) if left_side else None,
            mention_backward=total(self.mention_backward),
            layout=self.layout,
        )

    @property
    def richness(self) -> np.ndarray:
        return self.richness_sums / self.sizes


_DENSE_FIELDS = ("sizes", "vectors", "richness_sums", "dated", "mentioned")


# Sparse fields in pairs with the same entries in every row (the date blocks swapped), so the same row layout.
_SPARSE_PAIRS = (("forward", "backward"), ("mention_forward", "mention_backward"))


class StoryRows:
    """The current sums of every story of the merge, one row per story (indexed by story id).

    A story starts with its group's row; a merge gives its survivor a new one. Dense rows are written in
    place (the vectors, in `VectorRows`); sparse rows go to the end of flat arrays that grow by doubling
    (the older row of a story stays behind until the next growth copies only current rows). A step takes
    its stories' rows in one gather: thousands of steps of a hundred stories each cost little more than
    the rows they read.
    """

    def __init__(self, sums: GroupSums, vectors: VectorRows, single: GroupSums, item: np.ndarray) -> None:
        """`sums`: the dense sums of every group, and the sparse ones of the groups not of one item (`item`
        < 0); a group of one item reads its sparse rows from `single`, the items' own sums (`FlatRows`)."""
        self.layout = sums.layout
        # Taken over, written in place.
        self.dense = {name: getattr(sums, name) for name in _DENSE_FIELDS if name != "vectors"}
        self.vectors = vectors
        self.merged = np.zeros(len(sums.sizes), dtype=bool)  # has a row made by a merge
        self.alive = np.ones(len(sums.sizes), dtype=bool)  # not merged into another story
        self.sparse = {
            names: FlatRows([getattr(sums, name) for name in names], [getattr(single, name) for name in names], item)
            for names in _SPARSE_PAIRS
            if getattr(sums, names[0]) is not None
        }

    @classmethod
    def of_groups(cls, single: GroupSums, labels: np.ndarray, groups: int) -> StoryRows:
        """The rows of the groups of `labels` (0..groups-1) from the items' own sums."""
        membership = indicator(labels, groups)
        sizes = np.diff(membership.indptr)
        item = np.full(groups, -1, dtype=np.int64)
        one = np.flatnonzero(sizes == 1)
        item[one] = membership.indices[membership.indptr[one]]
        sums = single.combined(membership, vectors=False, sparse_rows=np.flatnonzero(sizes != 1))
        return cls(sums, VectorRows(single.vectors, membership), single, item)

    def take(self, stories: np.ndarray) -> GroupSums:
        """The sums of these stories, in this order."""
        values: dict[str, Any] = {name: dense[stories] for name, dense in self.dense.items()}
        values["vectors"] = self.vectors.take(stories)
        for names in _SPARSE_PAIRS:
            rows = self.sparse.get(names)
            values |= dict(zip(names, (None, None) if rows is None else rows.take(stories), strict=True))
        return GroupSums(**values, layout=self.layout)

    def merge(self, survivors: np.ndarray, absorbed: np.ndarray, sums: GroupSums) -> None:
        """Row k of `sums` becomes the row of story `survivors[k]`; the `absorbed` stories are gone."""
        self.alive[absorbed] = False
        self.merged[survivors] = True
        for name, dense in self.dense.items():
            dense[survivors] = getattr(sums, name)
        self.vectors.write(survivors, sums.vectors)
        for names, rows in self.sparse.items():
            rows.replace(survivors, [getattr(sums, name) for name in names], self.alive)


class VectorRows:
    """The summed vectors of every story (`StoryRows`). A story that is one item's group reads that item's
    vector, as `0 + x` (the sum `membership @ vectors` makes of one item); only groups of several items and
    stories made by a merge hold a row of their own, in an array that grows. All groups' rows at once,
    nearly all of them copies of single items, were 300 MB at 200k items."""

    def __init__(self, items: np.ndarray, membership: sparse.csr_matrix) -> None:
        sizes = np.diff(membership.indptr)
        self.items = items
        self.item = np.full(len(sizes), -1, dtype=np.int64)
        one = np.flatnonzero(sizes == 1)
        self.item[one] = membership.indices[membership.indptr[one]]
        several = np.flatnonzero(sizes != 1)
        self.slot = np.full(len(sizes), -1, dtype=np.int64)
        self.slot[several] = np.arange(len(several))
        # Each row of a product is its own sum: these groups' rows of `membership @ items`, as they would be.
        own = membership[several] @ items
        self.own = np.empty((max(64, 2 * len(several)), items.shape[1]), dtype=own.dtype)
        self.own[: len(several)] = own
        self.used = len(several)

    def take(self, stories: np.ndarray) -> np.ndarray:
        slot = self.slot[stories]
        mine = slot >= 0
        out = np.empty((len(stories), self.own.shape[1]), dtype=self.own.dtype)
        out[mine] = self.own[slot[mine]]
        out[~mine] = self.items[self.item[stories[~mine]]] + self.own.dtype.type(0)
        return out

    def write(self, stories: np.ndarray, values: np.ndarray) -> None:
        new = stories[self.slot[stories] < 0]
        if self.used + len(new) > len(self.own):
            grown = np.empty((2 * (self.used + len(new)), self.own.shape[1]), dtype=self.own.dtype)
            grown[: self.used] = self.own[: self.used]
            self.own = grown
        self.slot[new] = self.used + np.arange(len(new))
        self.used += len(new)
        self.own[self.slot[stories]] = values


class FlatRows:
    """Rows of sparse matrices that have the same row layout: row k of each at `[start[k] : start[k] +
    length[k]]` of its flat `indices` and `data` (see `StoryRows`).

    With `base` and `item`: row k, while `item[k] >= 0`, is the row `item[k]` of each `base` matrix as the
    product of a one-item membership row with it lists it (`membership @ base`: the row's entries in
    reverse order, zeros left out, each value 0 + x); `matrices` then hold the other rows only, in order.
    A copy of every item's row for the groups of one item was most of the merge's memory.
    """

    def __init__(
        self,
        matrices: list[sparse.csr_matrix],
        base: list[sparse.csr_matrix] | None = None,
        item: np.ndarray | None = None,
    ) -> None:
        layout = matrices[0].indptr
        if any(not np.array_equal(matrix.indptr, layout) for matrix in matrices):
            raise ValueError("matrices of different row layouts")
        self.columns = matrices[0].shape[1]
        self.flat = [(matrix.indices, matrix.data) for matrix in matrices]
        self.end = int(layout[-1])  # used part of the flat arrays
        self.base = base
        if base is None or item is None:
            self.item = None
            self.start = layout[:-1].astype(np.int64)
            self.length = np.diff(layout).astype(np.int64)
            return
        self.item = item.copy()
        own = np.flatnonzero(item < 0)
        self.start = np.zeros(len(item), dtype=np.int64)
        self.length = np.zeros(len(item), dtype=np.int64)
        self.start[own] = layout[:-1]
        self.length[own] = np.diff(layout)

    def take(self, rows: np.ndarray) -> list[sparse.csr_matrix]:
        shape = (len(rows), self.columns)
        if self.item is None or self.base is None or not (self.item[rows] >= 0).any():
            where, indptr = _row_positions(self.start[rows], self.length[rows])
            return [
                sparse.csr_matrix((data[where], indices[where], indptr), shape=shape) for indices, data in self.flat
            ]
        from_base = self.item[rows] >= 0
        own, based = np.flatnonzero(~from_base), np.flatnonzero(from_base)
        where, own_indptr = _row_positions(self.start[rows[own]], self.length[rows[own]])
        items = self.item[rows[based]]
        taken = []
        for (indices, data), matrix in zip(self.flat, self.base, strict=True):
            base_indices, base_data, base_lengths = _reversed_rows(matrix, items)
            lengths = np.zeros(len(rows), dtype=np.int64)
            lengths[own] = np.diff(own_indptr)
            lengths[based] = base_lengths
            indptr = np.zeros(len(rows) + 1, dtype=np.int64)
            np.cumsum(lengths, out=indptr[1:])
            out_indices = np.empty(indptr[-1], dtype=np.result_type(indices.dtype, base_indices.dtype))
            out_data = np.empty(indptr[-1], dtype=data.dtype)
            at = np.repeat(indptr[own] - own_indptr[:-1], np.diff(own_indptr)) + np.arange(own_indptr[-1])
            out_indices[at], out_data[at] = indices[where], data[where]
            base_indptr = np.zeros(len(items) + 1, dtype=np.int64)
            np.cumsum(base_lengths, out=base_indptr[1:])
            at = np.repeat(indptr[based] - base_indptr[:-1], base_lengths) + np.arange(base_indptr[-1])
            out_indices[at], out_data[at] = base_indices, base_data
            taken.append(sparse.csr_matrix((out_data, out_indices, indptr), shape=shape))
        return taken

    def replace(self, rows: np.ndarray, matrices: list[sparse.csr_matrix], alive: np.ndarray) -> None:
        """New rows for `rows`: row k of each matrix (the others of `alive` keep theirs)."""
        added = matrices[0].nnz
        if self.item is not None:
            self.item[rows] = -1  # their own rows from now on
        if self.end + added > len(self.flat[0][0]):
            self._grow(added, alive if self.item is None else alive & (self.item < 0))
        for (indices, data), matrix in zip(self.flat, matrices, strict=True):
            indices[self.end : self.end + added] = matrix.indices
            data[self.end : self.end + added] = matrix.data
        self.start[rows] = self.end + matrices[0].indptr[:-1]
        self.length[rows] = np.diff(matrices[0].indptr)
        self.end += added

    def _grow(self, needed: int, alive: np.ndarray) -> None:
        """Copy the rows of `alive` to arrays of twice their size (and room for `needed` more), a block of
        rows at a time: positions for all rows at once (8 bytes an entry) and the gathered copies before
        the grown arrays take them cost as much memory as the grown arrays themselves."""
        current = np.flatnonzero(alive)
        lengths = self.length[current]
        used = int(lengths.sum())
        size = 2 * (used + needed)
        grown = [(np.empty(size, dtype=indices.dtype), np.empty(size, dtype=data.dtype)) for indices, data in self.flat]
        offset = 0
        for block in range(0, len(current), _GROW_ROWS):
            rows = current[block : block + _GROW_ROWS]
            where, indptr = _row_positions(self.start[rows], lengths[block : block + _GROW_ROWS])
            for (indices, data), (more_indices, more_data) in zip(self.flat, grown, strict=True):
                more_indices[offset : offset + len(where)] = indices[where]
                more_data[offset : offset + len(where)] = data[where]
            self.start[rows] = offset + indptr[:-1]
            offset += len(where)
        self.flat = grown
        self.end = used


_GROW_ROWS = 16384  # rows copied at a time when `FlatRows` grows


def _sparse_product(left: sparse.csr_matrix, right: sparse.csr_matrix) -> sparse.csr_matrix:
    """`left @ right` of two CSR matrices, as scipy computes and lists it: its own kernels, called without
    the dispatch and checks around them (they cost more than the product in the thousands of small unions
    of a merge)."""
    from scipy.sparse import _sparsetools

    if left.data.dtype != right.data.dtype or left.shape[1] != right.shape[0]:
        return (left @ right).tocsr()
    rows, columns = left.shape[0], right.shape[1]
    index = [np.asarray(a, dtype=np.int64) for a in (left.indptr, left.indices, right.indptr, right.indices)]
    nnz = _sparsetools.csr_matmat_maxnnz(rows, columns, *index)
    if nnz == 0:
        return sparse.csr_matrix((rows, columns), dtype=left.dtype)
    indptr, indices = np.empty(rows + 1, dtype=np.int64), np.empty(nnz, dtype=np.int64)
    data = np.empty(nnz, dtype=left.dtype)
    _sparsetools.csr_matmat(rows, columns, *index[:2], left.data, *index[2:], right.data, indptr, indices, data)
    return sparse.csr_matrix((data, indices, indptr), shape=(rows, columns))


def _reversed_rows(matrix: sparse.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices, data and lengths of `matrix`'s rows `rows` as `membership @ matrix` lists a one-item
    membership row: scipy's product links each new column in front of the ones before (the row reversed)
    and leaves out the sums that are 0 (a stored zero, or -0.0); any other value is 0 + x = x."""
    starts = matrix.indptr[rows]
    lengths = matrix.indptr[rows + 1] - starts
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    where = np.repeat(starts + lengths - 1 + indptr[:-1], lengths) - np.arange(indptr[-1])
    data = matrix.data[where]
    kept = data != 0
    owner = np.repeat(np.arange(len(rows)), lengths)[~kept]
    return matrix.indices[where][kept], data[kept], lengths - np.bincount(owner, minlength=len(rows))


def _row_positions(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where rows of these starts and lengths lie in flat arrays, one after the other, and their indptr."""
    indptr = np.zeros(len(starts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    return np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1]), indptr


def _rows_of(matrix: sparse.csr_matrix, rows: np.ndarray, last: tuple[int, ...]) -> sparse.csr_matrix:
    """`matrix[rows]` and one row more, with entries in columns `last` and no values: gathered with numpy
    (scipy's row selection costs more in checks than in copying for the hundred rows of a merge step)."""
    indptr, indices, data = _raw_rows_of(matrix, rows, last)
    return sparse.csr_matrix((data, indices, indptr), shape=(len(rows) + 1, matrix.shape[1]))


def _raw_rows_of(
    matrix: sparse.csr_matrix, rows: np.ndarray, last: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_rows_of` as its indptr, indices and data (int64 indices), without building a scipy matrix."""
    starts = matrix.indptr[rows]
    where, indptr = _row_positions(starts, matrix.indptr[rows + 1] - starts)
    indices = np.concatenate([matrix.indices[where], np.array(last, dtype=matrix.indices.dtype)]).astype(np.int64)
    data = np.concatenate([matrix.data[where], np.zeros(len(last), dtype=matrix.dtype)])
    return np.append(indptr, len(indices)), indices, data


def _products_of(
    left: tuple[np.ndarray, np.ndarray, np.ndarray], right: tuple[np.ndarray, np.ndarray, np.ndarray], columns: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The elementwise product of two matrices of raw rows (as `_raw_rows_of` gives them), as scipy's
    `multiply` lists it (indptr, indices, data): scipy's own kernel, called without the checks and
    conversions around it, which cost more than the product for the hundred rows of a merge step."""
    from scipy.sparse import _sparsetools

    most = len(left[1]) + len(right[1])
    indptr = np.empty(len(left[0]), dtype=np.int64)
    indices = np.empty(most, dtype=np.int64)
    data = np.empty(most, dtype=left[2].dtype)
    _sparsetools.csr_elmul_csr(len(left[0]) - 1, columns, *left, *right, indptr, indices, data)
    return indptr, indices[: indptr[-1]], data[: indptr[-1]]


class _Layout:
    """Which columns of `forward` ⊙ `backward` sum to which signal (`block_of`, of `blocks`)."""

    def __init__(self, words: int, names: int, dates: DateEvidence) -> None:
        self.channels = channels = len(CHANNELS)
        # Blocks of forward ⊙ backward: 0 words, 1 names, 2.. cover·mass per channel, 2+k.. mass·cover.
        blocks = [np.zeros(words), np.ones(names), 2 + dates.channel, 2 + channels + dates.channel]
        self.block_of, self.blocks = np.concatenate(blocks).astype(np.intp), 2 + 2 * channels
        self.mention_block_of = np.r_[dates.channel, channels + dates.channel].astype(np.intp)
        self.mention_blocks = 2 * channels


def block_products(
    left_matrix: sparse.csr_matrix,
    right_matrix: sparse.csr_matrix,
    block_of: np.ndarray,
    blocks: int,
    rows: np.ndarray,
    cols: np.ndarray,
    chunk: int = 262144,
) -> np.ndarray:
    """Pairs × blocks: `left_matrix[rows[k]] · right_matrix[cols[k]]` summed within each column block
    (`block_of[column]`), in float32 and in the order scipy lists the products.

    scipy multiplies two matrices whose rows are all sorted by merging rows, and any others by scattering
    them, which lists a row's products in the reverse order of its left row. So that a pair's sums never
    depend on the other pairs of the call, the right side gets one more row that is not sorted (and has no
    products): the scatter, always. It was the path of every call on real batches already (rows of merged
    groups are not sorted).
    """
    out = np.zeros((len(rows), blocks), dtype=np.float64)
    for start in range(0, len(rows), chunk):
        r, c = rows[start : start + chunk], cols[start : start + chunk]
        left, right = _raw_rows_of(left_matrix, r, ()), _raw_rows_of(right_matrix, c, (1, 0))
        if left[2].dtype == right[2].dtype:
            indptr, indices, data = _products_of(left, right, left_matrix.shape[1])
        else:  # mixed precision: scipy's own casts
            products = _rows_of(left_matrix, r, ()).multiply(_rows_of(right_matrix, c, (1, 0)))
            indptr, indices, data = products.indptr, products.indices, products.data
        pair = np.repeat(np.arange(len(r) + 1), np.diff(indptr))
        sums = np.zeros((len(r) + 1) * blocks, dtype=data.dtype)
        np.add.at(sums, pair * blocks + block_of[indices], data)  # in order, one at a time
        out[start : start + len(r)] = sums.reshape(len(r) + 1, blocks)[:-1]
    return out


def _pair_signals(sums: GroupSums, left: np.ndarray, right: np.ndarray, other: GroupSums) -> tuple[np.ndarray, ...]:
    """Mean words and names TF-IDF products and mean date agreement over all member pairs of two groups,
    groups `left` of `sums` and `right` of `other`."""
    layout = sums.layout
    k = layout.channels
    sizes = (sums.sizes[left] * other.sizes[right]).astype(np.float64)
    products = block_products(sums.forward, other.backward, layout.block_of, layout.blocks, left, right)
    # Each direction on its own: how the right side's events lie among the left side's dates, and back.
    towards, back = products[:, 2 : 2 + k], products[:, 2 + k : 2 + 2 * k]
    compared = sums.dated[left] * other.dated[right] - sums.mentioned[left] * other.mentioned[right]
    if sums.mention_forward is not None and sums.mention_forward.nnz:  # none: all products 0
        both_mentions = block_products(
            sums.mention_forward, other.mention_backward, layout.mention_block_of, layout.mention_blocks, left, right
        )
        towards, back = towards - both_mentions[:, :k], back - both_mentions[:, k:]
    agree = np.maximum(towards, back)  # the direction in which one side's events are the other's dates
    dates = np.prod(1.0 - np.clip(compared - agree, 0.0, None) / sizes[:, None], axis=1)
    return products[:, 0] / sizes, products[:, 1] / sizes, dates


def group_date_agreement(sums: GroupSums, left: np.ndarray, right: np.ndarray, dense: bool = False) -> np.ndarray:
    """Mean `date_agreement` over all member pairs of two groups, exactly per channel (channels multiply).

    A pair counts 1 unless it is compared (both dated, not both mentions), so the mean is
    1 − (compared pairs − their agreement)/|A||B|; compared pairs are all dated pairs less the pairs of two
    mentions, and the agreement of a pair is bilinear in the members' date vectors.
    `dense`: all pairs of `left` × `right` as a matrix instead of the listed pairs.
    """
    if dense:
        rows, cols = np.repeat(left, len(right)), np.tile(right, len(left))
        return group_date_agreement(sums, rows, cols).reshape(len(left), len(right))
    return _pair_signals(sums, left, right, sums)[2]


LEDE_WORDS = 30  # words from which a text has a body: bare headlines (about 10 words) do not


# Share of the names (entity TF-IDF) in the cohesion rule's signal for texts with a body, the rest the
# embedding: a few names in common between snippets that name little are not yet one event. Measured with
# merge_cohesion 0.74, ECB+ BCubed F1: 0.929 at 0.75, 0.932 at 0.8, 0.930 at 0.85 and 0.9, 0.920 with
# names alone (which needs 0.74 to keep the digest sample's two NATO stories apart).
NAMES_WEIGHT = 0.8


def names_signal(
    embedding: np.ndarray,
    entities: np.ndarray,
    richness: tuple[np.ndarray, np.ndarray],
    dates: np.ndarray,
    config: ClusterConfig,
) -> np.ndarray:
    """The signal of the cohesion rule: how alike two groups are in the names and numbers they report
    (the entity TF-IDF products, `NAMES_WEIGHT` of it, the rest the embedding), for texts with a body;
    for bare headlines, which name too few to compare, mostly the embedding, in proportion to their words
    (`LEDE_WORDS`). Times the date agreement, as `similarity`.

    Two events of one topic share their topic's words and the sentence embedding sees the topic; what
    differs is who, where and how many. As a ratio of across to within, the names need no scale of their
    own: both sides are measured on the same texts (over the merge decisions of ECB+, across/within of
    the names separates same-event from other-event pairs of groups with AUC 0.92, of the embedding 0.80).
    """
    names = NAMES_WEIGHT * np.minimum(1.0, np.minimum(*richness) * config.full_text_words / LEDE_WORDS)
    return ((1 - names) * embedding + names * entities) * dates


def group_similarity_and_names(
    sums: GroupSums, left: np.ndarray, right: np.ndarray, config: ClusterConfig
) -> tuple[np.ndarray, np.ndarray]:
    """`group_similarity` and the cohesion rule's signal (`names_signal`) of the same pairs, in one pass."""
    similarity, _, names = group_signals(sums, left, right, config)
    return similarity, names


def group_similarity(sums: GroupSums, left: np.ndarray, right: np.ndarray, config: ClusterConfig) -> np.ndarray:
    """Mean pair similarity between groups `left[k]` and `right[k]`, exactly, from per-group sums.

    Cosine and TF-IDF products are bilinear, so the mean over all |A|·|B| pairs is the product of the
    groups' summed vectors divided by |A|·|B|: no pair needs to be in the candidate graph.
    """
    return similarity_and_dates(sums, left, right, config)[0]


def similarity_and_dates(
    sums: GroupSums, left: np.ndarray, right: np.ndarray, config: ClusterConfig, other: GroupSums | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """`group_similarity` and `group_date_agreement` of the same pairs, from one pass (`right` indexes
    `other` when given)."""
    similarity, dates, _ = group_signals(sums, left, right, config, other)
    return similarity, dates


def group_signals(
    sums: GroupSums, left: np.ndarray, right: np.ndarray, config: ClusterConfig, other: GroupSums | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Similarity, date agreement and names signal of the pairs (`right` indexes `other` when given)."""
    other = sums if other is None else other
    embedding = pair_cosines(sums.vectors, left, right, col_vectors=other.vectors)
    embedding /= sums.sizes[left] * other.sizes[right]
    words, entities, dates = _pair_signals(sums, left, right, other)
    richness = (sums.richness[left], other.richness[right])
    similarity = pair_score(embedding, words, entities, richness, dates, config)
    return similarity, dates, names_signal(embedding, entities, richness, dates, config)


def all_group_similarities(
    sums: GroupSums, groups: np.ndarray, config: ClusterConfig, block_rows: int = 512, names: bool = False
) -> Any:
    """`group_similarity` for every pair of the given groups, as a condensed vector (scipy's order); with
    `names`, also the cohesion rule's signal (`names_signal`), as a second one.

    The upper pairs of a block of rows at a time, so a part of m groups needs the m·(m-1)/2 results and
    no m×m temporaries.
    """
    m = len(groups)
    parts = []
    for start in range(0, m - 1, block_rows):
        rows = np.arange(start, min(m - 1, start + block_rows))
        counts = m - 1 - rows  # row r pairs with r+1 .. m-1: row-major, the condensed order
        left = np.repeat(rows, counts)
        right = np.arange(len(left)) - np.repeat(np.cumsum(counts) - counts, counts) + left + 1
        parts.append(group_similarity_and_names(sums, groups[left], groups[right], config))
    similarity = np.concatenate([part[0] for part in parts]) if parts else np.zeros(0)
    names_signal = np.concatenate([part[1] for part in parts]) if parts else np.zeros(0)
    return (similarity, names_signal) if names else similarity


def member_fit(
    single: GroupSums | ItemFeatures, labels: np.ndarray, items: np.ndarray, config: ClusterConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Mean similarity, and mean date agreement, of each of `items` with the other members of its group
    (NaN for a group of one): exactly, from the group's sums less the item's own. `single`: the items'
    own sums (`GroupSums.items`), or their features.

    A chunk of items at a time: each item needs its own copy of the rest of its group, and 200k such
    rows at once cost more in fresh memory than in arithmetic.
    """
    groups = int(labels.max(initial=-1) + 1)
    if isinstance(single, ItemFeatures):
        single = GroupSums.items(single)
    needed, group_of_item = np.unique(labels[items], return_inverse=True)  # only the groups asked about
    rank = np.full(groups, -1, dtype=np.int64)
    rank[needed] = np.arange(len(needed))
    members = np.flatnonzero(rank[labels] >= 0)
    membership = indicator_of(rank[labels[members]], members, len(needed), len(labels))
    whole = single.combined(membership, left_side=False)  # the rest of a group is the right side of its pairs
    for rows in (whole.backward, whole.mention_backward):
        if rows is not None:
            rows.sort_indices()  # for the lookups of `rest_where`
    similarity, dates = np.empty(len(items)), np.empty(len(items))
    for start in range(0, len(items), _FIT_CHUNK):
        part = slice(start, start + _FIT_CHUNK)
        own = single.select(items[part])
        rest = _rest_of_groups(single, whole, own, items[part], group_of_item[part])
        alone = rest.sizes < 0.5
        rest.sizes = np.maximum(rest.sizes, 1.0)  # a group of one: no rest, reported as NaN
        each = np.arange(len(own.sizes))
        fit, agreement = similarity_and_dates(own, each, each, config, rest)
        similarity[part], dates[part] = np.where(alone, np.nan, fit), np.where(alone, np.nan, agreement)
    return similarity, dates


_FIT_CHUNK = 16384  # items: their arrays stay under 32 MB, which the allocator reuses instead of mapping anew


def _rest_of_groups(
    single: GroupSums, whole: GroupSums, own: GroupSums, items: np.ndarray, group_of_item: np.ndarray
) -> GroupSums:
    """Each item's group less the item, `whole.select(group_of_item).minus(own)`, as far as the pair of
    the item with it needs: its sparse sums on the right side of the pair only (`backward`), and only
    where the item's own left side has entries, since nothing else is multiplied. A big story's row,
    copied for each of its members, is what would cost."""
    values: dict[str, Any] = {name: getattr(whole, name)[group_of_item] - getattr(own, name) for name in _DENSE_FIELDS}
    for left_name, right_name in _SPARSE_PAIRS:
        left = getattr(own, left_name)
        values[left_name] = None
        values[right_name] = None if left is None else rest_where(left, whole, single, right_name, items, group_of_item)
    return GroupSums(**values, layout=single.layout)


def rest_where(
    left: sparse.csr_matrix, whole: GroupSums, single: GroupSums, name: str, items: np.ndarray, groups: np.ndarray
) -> sparse.csr_matrix:
    """`whole.<name>[groups] − single.<name>[items]` (zeros dropped, as a subtraction drops them) at the
    entries of `left`, one row per item; values looked up by binary search in sorted rows."""
    if not left.nnz:  # scipy returns a sparse matrix, not an empty array, for an empty fancy index
        return sparse.csr_matrix(left.shape, dtype=left.dtype)
    rows = np.repeat(np.arange(left.shape[0]), np.diff(left.indptr))
    columns = left.indices
    rest = (
        np.asarray(getattr(whole, name)[groups[rows], columns]).ravel()
        - np.asarray(getattr(single, name)[items[rows], columns]).ravel()
    )
    kept = rest != 0
    indptr = np.zeros(left.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows[kept], minlength=left.shape[0]), out=indptr[1:])
    return sparse.csr_matrix((rest[kept], columns[kept], indptr), shape=left.shape)


def indicator_of(groups_of: np.ndarray, items: np.ndarray, groups: int, n: int) -> sparse.csr_matrix:
    """Row g marks `items[k]` wherever `groups_of[k]` is g."""
    return sparse.csr_matrix((np.ones(len(items), dtype=np.float32), (groups_of, items)), shape=(groups, n))


def indicator(labels: np.ndarray, groups: int) -> sparse.csr_matrix:
    """Row g marks the items of group g."""
    return indicator_of(labels, np.arange(len(labels)), groups, len(labels))
