"""ONNX Runtime encoder for a sentence-transformers model directory (mean pooling, as all-MiniLM-L6-v2).

The model is exported locally from the same weights (no download) the first time, optionally quantized to
int8 with dynamic quantization, and kept in a cache folder named by the full SHA-256 of the weights.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


def cache_dir() -> Path:
    root = os.environ.get("STORYCLUST_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "storyclust"
    )
    return Path(root)


def _max_length(model_dir: Path) -> int:
    config = model_dir / "sentence_bert_config.json"
    if config.exists():
        return int(json.loads(config.read_text()).get("max_seq_length", 256))
    return 256


def export_onnx(model_dir: Path, target: Path) -> None:
    """Export the transformer to ONNX with dynamic batch and sequence axes (needs torch, once)."""
    import torch
    from transformers import AutoModel

    class Wrapped(torch.nn.Module):
        """Positional inputs for the exporter; the transformer's own forward takes keywords."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = AutoModel.from_pretrained(str(model_dir))

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    model = Wrapped().eval()
    sample = torch.ones((1, 8), dtype=torch.long)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    with torch.no_grad():
        torch.onnx.export(
            model,
            (sample, sample, torch.zeros_like(sample)),
            str(partial),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={
                name: {0: "batch", 1: "sequence"} for name in ("input_ids", "attention_mask", "token_type_ids")
            }
            | {"last_hidden_state": {0: "batch", 1: "sequence"}},
            opset_version=17,
            dynamo=False,
        )
    os.replace(partial, target)


def quantize(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    partial = target.with_suffix(f".{os.getpid()}.tmp")
    quantize_dynamic(str(source), str(partial), weight_type=QuantType.QInt8)
    os.replace(partial, target)


class OnnxEncoder:
    """Tokenize with the model's fast tokenizer, run the ONNX graph, mean-pool and L2-normalise."""

    def __init__(self, model_dir: Path, weights_sha256: str, quantized: bool) -> None:
        """`weights_sha256`: the checked hash of the model's files (`pipeline.embed.model_sha256`), which
        names the export in the cache."""
        import onnxruntime
        from tokenizers import Tokenizer

        folder = cache_dir() / "onnx" / weights_sha256
        fp32 = folder / "model.onnx"
        if not fp32.exists():
            export_onnx(model_dir, fp32)
        path = fp32
        if quantized:
            path = folder / "model.int8.onnx"
            if not path.exists():
                quantize(fp32, path)
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # A worker given n CPUs (Ray sets OMP_NUM_THREADS to its share) uses n threads, not every core.
        options.intra_op_num_threads = _thread_budget()
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=_max_length(model_dir))
        self.tokenizer.enable_padding()

    def encode(self, texts: list[str], batch_size: int, progress: bool = False) -> np.ndarray:
        from tqdm import tqdm

        out: list[np.ndarray] = []
        bar = tqdm(total=len(texts), desc="embed", unit="text", disable=not progress, leave=False)
        for start in range(0, len(texts), batch_size):
            bar.update(min(batch_size, len(texts) - start))
            encodings = self.tokenizer.encode_batch(texts[start : start + batch_size])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            out.append(pooled.astype(np.float32))
        bar.close()
        return np.concatenate(out) if out else np.zeros((0, 384), dtype=np.float32)


def _thread_budget() -> int:
    """OMP_NUM_THREADS when set to a positive number, else 0 (onnxruntime's default: every core)."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else 0
