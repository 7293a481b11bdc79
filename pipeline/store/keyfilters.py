"""Key filters: a Bloom filter of each segment's key column (article ids, text hashes), in a file beside it.

Why: a run looks up its own thousand ids and text hashes (is this item stored, is its vector cached, the
rows of its stories' members). Without a filter each lookup reads the key column of every segment, so its
cost grows with the archive (0.3 s per lookup at a million sealed articles); with one it reads only the
segments that may hold a wanted key. A filter never misses a key its segment holds; at 24 bits and 17
probes per key it names a segment that holds none of a thousand wanted keys about once in a hundred
segments, so a lookup through the filters finds exactly what a scan of every segment finds, reading a
few segments more. Like its segment, a filter is written once, before any published database names the
segment, and never changed: `<segment>.keys` in the segments folder, outside the database file that each
run copies. A segment without a readable filter (sealed before filters, or the filter lost) is always read.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.store.schema import sql_string

# The archived views looked up by key, and their key column (`rejects` is only ever read whole).
KEY_COLUMNS = {"articles": "article_id", "embedding_cache": "text_hash", "minhash_cache": "text_hash"}
BITS_PER_KEY = 24
PROBES = 17
SUFFIX = ".keys"
_MAGIC = b"SCKF"
_HEADER = np.dtype([("magic", "S4"), ("probes", "<u4"), ("keys", "<u8")])


def filter_path(folder: Path, file: str) -> Path:
    return folder / f"{file}{SUFFIX}"


def key_hashes(keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit hashes of each key (its probes are their combinations, `_positions`)."""
    digests = b"".join(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).digest() for key in keys)
    pairs = np.frombuffer(digests, dtype="<u8").reshape(-1, 2)
    return pairs[:, 0].copy(), pairs[:, 1] | np.uint64(1)


def _positions(first: np.ndarray, second: np.ndarray, bits: int) -> np.ndarray:
    """Each key's probe positions in a filter of `bits` bits (keys × PROBES), by double hashing."""
    steps = np.arange(PROBES, dtype=np.uint64)
    with np.errstate(over="ignore"):  # the sums wrap around 2**64, as intended
        return (first[:, None] + steps[None, :] * second[:, None]) % np.uint64(bits)


def _filter_bits(keys: int) -> int:
    """The size in bits of the filter of a segment of `keys` keys (whole bytes)."""
    return max(64, -(-BITS_PER_KEY * keys // 8) * 8)


def build_filter(keys: list[str]) -> bytes:
    """The filter bits of a segment holding `keys` (packed, most significant bit first)."""
    bits = _filter_bits(len(keys))
    flags = np.zeros(bits, dtype=bool)
    if keys:
        flags[_positions(*key_hashes(keys), bits).ravel()] = True
    return np.packbits(flags).tobytes()


def may_hold_any(bloom: bytes, first: np.ndarray, second: np.ndarray, probes: dict[int, Any] | None = None) -> bool:
    """Whether the segment of these filter bits may hold one of the keys hashed to `first`, `second`
    (`probes`: the keys' byte offsets and bit shifts by filter size, kept across the segments of one lookup)."""
    packed = np.frombuffer(bloom, dtype=np.uint8)
    probes = {} if probes is None else probes
    if len(packed) not in probes:
        positions = _positions(first, second, len(packed) * 8)
        shifts = (np.uint64(7) - (positions & np.uint64(7))).astype(np.uint8)
        probes[len(packed)] = ((positions >> np.uint64(3)).astype(np.intp), shifts)
    offsets, shifts = probes[len(packed)]
    found = (packed[offsets] >> shifts) & 1
    return bool(found.all(axis=1).any())


def write_filter(db: Any, folder: Path, file: str, view: str) -> None:
    """Write the filter of one segment of `view`, from its keys as read back from the file, durably and
    under its final name only once complete (a torn filter could miss keys; a missing one cannot)."""
    column = KEY_COLUMNS.get(view)
    if column is None:
        return
    keys = [key for (key,) in db.execute(f"SELECT {column} FROM read_parquet({sql_string(folder / file)})").fetchall()]
    header = np.array([(_MAGIC, PROBES, len(keys))], dtype=_HEADER).tobytes()
    target = filter_path(folder, file)
    partial = target.with_name(target.name + ".partial")
    with open(partial, "wb") as handle:
        handle.write(header + build_filter(keys))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, target)


def read_filter(folder: Path, file: str) -> bytes | None:
    """The filter bits of a segment (None: no filter, or not one this code wrote)."""
    try:
        data = filter_path(folder, file).read_bytes()
    except OSError:
        return None
    if len(data) <= _HEADER.itemsize:
        return None
    header = np.frombuffer(data[: _HEADER.itemsize], dtype=_HEADER)[0]
    bits = _filter_bits(int(header["keys"]))
    if header["magic"] != _MAGIC or header["probes"] != PROBES or len(data) - _HEADER.itemsize != bits // 8:
        return None
    return data[_HEADER.itemsize :]


def add_missing_filters(db: Any, folder: Path) -> int:
    """Write the filters of the active keyed segments that have none (sealed before filters existed); the
    segments themselves are there (`segments.missing_segments`, checked first)."""
    files = db.execute(
        "SELECT file, segment_table FROM segments WHERE replaced_at IS NULL AND list_contains(?, segment_table) "
        "ORDER BY file",
        [list(KEY_COLUMNS)],
    ).fetchall()
    missing = [(file, view) for file, view in files if not filter_path(folder, file).exists()]
    for file, view in missing:
        write_filter(db, folder, file, view)
    return len(missing)


def files_holding(folder: Path, files: list[str], keys: list[str]) -> list[str]:
    """Those of the segment `files` that may hold one of `keys`: whose filter says so, or that have none."""
    if not files or not keys:
        return []
    first, second = key_hashes(keys)
    holding: list[str] = []
    probes: dict[int, Any] = {}  # most segments are of one size: their probes are computed once
    for file in files:
        bloom = read_filter(folder, file)
        if bloom is None or may_hold_any(bloom, first, second, probes):
            holding.append(file)
    return holding
