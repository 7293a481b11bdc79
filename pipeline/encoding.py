"""The embedding loop shared by the lean backends (ONNX Runtime, torch in bf16): tokenize once, batch by a
token budget, run the transformer, mean-pool and L2-normalise, as sentence-transformers' all-MiniLM-L6-v2 does.

Batches are cut by padded tokens, not by a count of texts: sorted by length, a batch of short headlines holds
hundreds of texts and a batch of full articles a few dozen, so the matrix products stay large, padding stays
small and a batch's memory is bounded the same way for every input.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from pipeline.errors import ModelError

# Token ids and attention mask of one batch (int64, batch × sequence) → hidden states (batch × sequence × dim).
Forward = Callable[[np.ndarray, np.ndarray], np.ndarray]
# A batch never holds more than this many times `embed.batch_size` texts, however short they are.
MOST_TEXTS_PER_TOKEN_BUDGET = 16


def max_length(model_dir: Path) -> int:
    """The model's token limit (sentence-transformers' `max_seq_length`; 256 for all-MiniLM-L6-v2)."""
    config = model_dir / "sentence_bert_config.json"
    if config.exists():
        return int(json.loads(config.read_text()).get("max_seq_length", 256))
    return 256


def check_mean_pooling(model_dir: Path, backend: str) -> None:
    """The lean backends pool by the mean of the tokens; a model that pools otherwise needs the torch backend."""
    config = model_dir / "1_Pooling" / "config.json"
    if config.exists() and not json.loads(config.read_text()).get("pooling_mode_mean_tokens", False):
        raise ModelError(
            f'embed.backend "{backend}" supports mean-pooling models only and {model_dir} pools otherwise: '
            'use embed.backend = "torch"'
        )


def token_batches(lengths: np.ndarray, budget: int, most: int) -> Iterator[slice]:
    """Slices of texts sorted by token length (ascending) whose padded size (count × longest) stays within
    `budget` tokens, with at most `most` texts each."""
    start = 0
    while start < len(lengths):
        stop = start + 1
        while stop < len(lengths) and stop - start < most and (stop + 1 - start) * lengths[stop] <= budget:
            stop += 1
        yield slice(start, stop)
        start = stop


class PooledEncoder:
    """Unit sentence vectors from a transformer's hidden states (mean over the attended tokens)."""

    def __init__(self, model_dir: Path, forward: Forward) -> None:
        from tokenizers import Tokenizer

        self.forward = forward
        self.limit = max_length(model_dir)
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=self.limit)
        self.tokenizer.no_padding()

    def encode(self, texts: list[str], batch_size: int, progress: bool = False) -> np.ndarray:
        """Vectors in the order of `texts` (at least one); `batch_size` full-length texts make the token budget
        of a batch."""
        from tqdm import tqdm

        encodings = self.tokenizer.encode_batch(texts)
        lengths = np.array([len(e.ids) for e in encodings], dtype=np.int64)
        order = np.argsort(lengths, kind="stable")
        batches = []  # the pooled vectors in `order`
        bar = tqdm(total=len(texts), desc="embed", unit="text", disable=not progress, leave=False)
        budget, most = batch_size * self.limit, batch_size * MOST_TEXTS_PER_TOKEN_BUDGET
        for part in token_batches(lengths[order], budget, most):
            rows = order[part]
            width = int(lengths[rows].max())
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for row, index in enumerate(rows):
                tokens = encodings[index].ids
                ids[row, : len(tokens)] = tokens
                mask[row, : len(tokens)] = 1
            batches.append(mean_pool(self.forward(ids, mask), mask))
            bar.update(len(rows))
        bar.close()
        pooled = np.concatenate(batches)
        result = np.empty_like(pooled)
        result[order] = pooled
        return result


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The mean of the attended tokens' hidden states, L2-normalised (float32)."""
    weights = mask[..., None].astype(np.float32)
    pooled = (hidden.astype(np.float32, copy=False) * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return pooled.astype(np.float32, copy=False)
