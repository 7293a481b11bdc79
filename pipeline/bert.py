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
from typing import Any

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

    `bfloat16`: the matrix products run in bfloat16 with fp32 accumulation (native on AMX / AVX512-BF16 CPUs);
    embeddings, layer norms, softmax and residual sums stay fp32, as under torch's autocast.
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
        self.matrix_dtype = torch.bfloat16 if bfloat16 else torch.float32
        self.device = device

        def vector(name: str, dtype: Any = torch.float32) -> Any:
            return weights[name].to(device=device, dtype=dtype)

        def matrix(name: str) -> Any:  # stored transposed once: x @ w.T without a transpose per call
            return weights[name].to(device=device, dtype=self.matrix_dtype).t().contiguous()

        prefix = "embeddings."
        self.word = vector(prefix + "word_embeddings.weight")
        self.position = vector(prefix + "position_embeddings.weight")
        self.token_type = vector(prefix + "token_type_embeddings.weight")[0]
        self.embedding_norm = (vector(prefix + "LayerNorm.weight"), vector(prefix + "LayerNorm.bias"))
        self.layers = []
        for index in range(int(config["num_hidden_layers"])):
            layer = f"encoder.layer.{index}."
            attention = layer + "attention."
            query_key_value = torch.cat(
                [weights[f"{attention}self.{part}.weight"] for part in ("query", "key", "value")]
            ).to(device=device, dtype=self.matrix_dtype)
            self.layers.append(
                {
                    "qkv": query_key_value.t().contiguous(),
                    "qkv_bias": torch.cat(
                        [
                            vector(f"{attention}self.{part}.bias", self.matrix_dtype)
                            for part in ("query", "key", "value")
                        ]
                    ),
                    "out": matrix(attention + "output.dense.weight"),
                    "out_bias": vector(attention + "output.dense.bias", self.matrix_dtype),
                    "out_norm": (
                        vector(attention + "output.LayerNorm.weight"),
                        vector(attention + "output.LayerNorm.bias"),
                    ),
                    "up": matrix(layer + "intermediate.dense.weight"),
                    "up_bias": vector(layer + "intermediate.dense.bias", self.matrix_dtype),
                    "down": matrix(layer + "output.dense.weight"),
                    "down_bias": vector(layer + "output.dense.bias", self.matrix_dtype),
                    "down_norm": (vector(layer + "output.LayerNorm.weight"), vector(layer + "output.LayerNorm.bias")),
                }
            )

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.hidden_states(torch.from_numpy(ids).to(self.device), torch.from_numpy(mask).to(self.device))

    def hidden_states(self, ids: Any, mask: Any) -> Any:
        """The last layer's hidden states (batch × sequence × hidden, fp32) as a numpy array."""
        import torch
        from torch.nn import functional

        batch, length = ids.shape
        hidden = self.word[ids] + self.position[:length] + self.token_type
        hidden = functional.layer_norm(hidden, hidden.shape[-1:], *self.embedding_norm, self.eps)
        width = hidden.shape[-1]
        # Padding is masked out of attention with the most negative float, as transformers does.
        masked = torch.zeros(mask.shape, dtype=self.matrix_dtype, device=self.device)
        masked.masked_fill_(mask == 0, torch.finfo(self.matrix_dtype).min)
        masked = masked[:, None, None, :]
        for layer in self.layers:
            qkv = self._linear(hidden, layer["qkv"], layer["qkv_bias"])
            query, key, value = qkv.view(batch, length, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
            context = functional.scaled_dot_product_attention(query, key, value, attn_mask=masked)
            context = context.transpose(1, 2).reshape(batch, length, width)
            attended = self._linear(context, layer["out"], layer["out_bias"]).float() + hidden
            hidden = functional.layer_norm(attended, (width,), *layer["out_norm"], self.eps)
            expanded = functional.gelu(self._linear(hidden, layer["up"], layer["up_bias"]))
            output = self._linear(expanded, layer["down"], layer["down_bias"]).float() + hidden
            hidden = functional.layer_norm(output, (width,), *layer["down_norm"], self.eps)
        return hidden.cpu().numpy()

    def _linear(self, inputs: Any, weight: Any, bias: Any) -> Any:
        """inputs @ weight + bias, the product in the matrix dtype (fp32 accumulation), the bias added in it (both held in that dtype)."""
        import torch

        return torch.addmm(bias, inputs.reshape(-1, inputs.shape[-1]).to(weight.dtype), weight).view(
            *inputs.shape[:-1], weight.shape[1]
        )
