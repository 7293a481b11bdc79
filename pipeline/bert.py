"""A BERT encoder's forward pass in plain torch, for the bundled all-MiniLM-L6-v2 and any BERT checkpoint like it.

Why not `transformers`: importing it and its modelling code costs about 2 s of every cold run (more than the
pipeline's own stages on a few thousand headlines), for about sixty lines of arithmetic. The weights are read
with `safetensors`; `tests/test_embed_backends.py` checks the hidden states against `transformers.BertModel`.
A checkpoint this module does not cover (another architecture, relative positions, another activation) is
reported by `supported` and loaded with `transformers` instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

# The BertModel variant this forward computes (transformers' defaults where config.json is silent): absolute
# positions, exact (erf) GELU.
SUPPORTED = {"model_type": "bert", "position_embedding_type": "absolute", "hidden_act": "gelu"}
DEFAULTS = {"position_embedding_type": "absolute", "hidden_act": "gelu"}


def supported(model_dir: Path) -> bool:
    """Whether the checkpoint is a BERT this module computes exactly, with its weights in safetensors."""
    config_path = model_dir / "config.json"
    if not config_path.exists() or not (model_dir / "model.safetensors").exists():
        return False
    config = DEFAULTS | json.loads(config_path.read_text())
    return all(config.get(key) == value for key, value in SUPPORTED.items())


class BertEncoder:
    """Hidden states of a BERT encoder: embeddings, then per layer self-attention and a GELU feed-forward,
    each followed by a residual layer norm, as `transformers.BertModel` computes them.

    `bfloat16`: from the embeddings' layer norm on, weights and activations are bfloat16, the matrix products
    accumulate in fp32 (native on AMX / AVX512-BF16 CPUs) and layer norms compute their statistics in fp32.
    Vectors are at cosine 0.99996 to fp32 on average (0.99993 at least, ECB+). Keeping the residual sums and
    layer norms in fp32, as torch's autocast does, gives 0.99998 but costs 13% more time on full articles.
    """

    def __init__(self, model_dir: Path, bfloat16: bool, device: str = "cpu") -> None:
        import torch
        from safetensors.torch import load_file

        config = json.loads((model_dir / "config.json").read_text())
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        weights = {
            name.removeprefix("bert."): tensor for name, tensor in load_file(model_dir / "model.safetensors").items()
        }
        self.dtype = torch.bfloat16 if bfloat16 else torch.float32
        self.device = device

        def embedding(name: str) -> Any:  # the embeddings and their layer norm: fp32
            return weights["embeddings." + name].to(device=device, dtype=torch.float32)

        def vector(name: str) -> Any:
            return weights[name].to(device=device, dtype=self.dtype)

        def dense(*prefixes: str) -> _Dense:  # stacked and stored transposed: x @ w without a transpose per call
            weight = torch.cat([weights[prefix + "weight"] for prefix in prefixes])
            bias = torch.cat([vector(prefix + "bias") for prefix in prefixes])
            return _Dense(weight.to(device=device, dtype=self.dtype).t().contiguous(), bias)

        def norm(prefix: str) -> tuple[Any, Any]:
            return vector(prefix + "weight"), vector(prefix + "bias")

        self.word, self.position = embedding("word_embeddings.weight"), embedding("position_embeddings.weight")
        self.token_type = embedding("token_type_embeddings.weight")[0]
        self.embedding_norm = (embedding("LayerNorm.weight"), embedding("LayerNorm.bias"))
        self.layers = []
        for index in range(int(config["num_hidden_layers"])):
            layer = f"encoder.layer.{index}."
            attention = layer + "attention."
            self.layers.append(
                _Layer(
                    query_key_value=dense(*(f"{attention}self.{part}." for part in ("query", "key", "value"))),
                    attention_out=dense(attention + "output.dense."),
                    attention_norm=norm(attention + "output.LayerNorm."),
                    up=dense(layer + "intermediate.dense."),
                    down=dense(layer + "output.dense."),
                    output_norm=norm(layer + "output.LayerNorm."),
                )
            )

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.hidden_states(torch.from_numpy(ids).to(self.device), torch.from_numpy(mask).to(self.device))

    def hidden_states(self, ids: Any, mask: Any) -> Any:
        """The last layer's hidden states (batch × sequence × hidden) as a float32 numpy array."""
        import torch
        from torch.nn import functional

        batch, length = ids.shape
        hidden = self.word[ids] + self.position[:length] + self.token_type
        hidden = functional.layer_norm(hidden, hidden.shape[-1:], *self.embedding_norm, self.eps).to(self.dtype)
        width = hidden.shape[-1]
        # Padding is masked out of attention with the most negative float, as transformers does.
        masked = torch.zeros(mask.shape, dtype=self.dtype, device=self.device)
        masked.masked_fill_(mask == 0, torch.finfo(self.dtype).min)
        masked = masked[:, None, None, :]
        for layer in self.layers:
            qkv = _linear(hidden, layer.query_key_value)
            query, key, value = qkv.view(batch, length, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
            context = functional.scaled_dot_product_attention(query, key, value, attn_mask=masked)
            context = context.transpose(1, 2).reshape(batch, length, width)
            attended = _linear(context, layer.attention_out) + hidden
            hidden = functional.layer_norm(attended, (width,), *layer.attention_norm, self.eps)
            expanded = functional.gelu(_linear(hidden, layer.up))
            output = _linear(expanded, layer.down) + hidden
            hidden = functional.layer_norm(output, (width,), *layer.output_norm, self.eps)
        return hidden.float().cpu().numpy()


class _Dense(NamedTuple):
    """A linear layer's weight (stored transposed: in × out) and bias."""

    weight: Any
    bias: Any


class _Layer(NamedTuple):
    """One encoder layer: self-attention (queries, keys and values in one product) and the feed-forward, each
    followed by a residual layer norm (weight, bias)."""

    query_key_value: _Dense
    attention_out: _Dense
    attention_norm: tuple[Any, Any]
    up: _Dense
    down: _Dense
    output_norm: tuple[Any, Any]


def _linear(inputs: Any, dense: _Dense) -> Any:
    """inputs @ weight + bias over the last dimension."""
    import torch

    return torch.addmm(dense.bias, inputs.reshape(-1, inputs.shape[-1]), dense.weight).view(
        *inputs.shape[:-1], dense.weight.shape[1]
    )
