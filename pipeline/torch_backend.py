"""torch forward pass of a sentence-transformers model directory's transformer in bfloat16 (`torch-bf16`).

Neither sentence-transformers nor, for a BERT checkpoint such as the bundled model, `transformers` is imported:
together they cost about 5 s of every cold run. A BERT runs in `pipeline.bert` (bfloat16 weights and
activations there); any other architecture is loaded with `transformers` and run under autocast (bf16 matrix
products, fp32 layer norms and residual sums). The pooling is `pipeline.encoding`'s mean pooling.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline import bert
from pipeline.encoding import Forward


def torch_device() -> str:
    """A GPU where the process has one (a Ray actor given `engine.embed_gpus`), else the CPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def bf16_forward(model_dir: Path) -> Forward:
    """The transformer in bfloat16 on `torch_device()`."""
    import torch

    device = torch_device()
    if bert.supported(model_dir):
        return bert.BertEncoder(model_dir, bfloat16=True, device=device)
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # its "Loading weights" bar is not the run's progress
    model = AutoModel.from_pretrained(str(model_dir)).to(device).eval()
    for module in model.modules():  # cast once here rather than on every product: autocast runs these in bf16
        if isinstance(module, torch.nn.Linear):
            module.to(torch.bfloat16)

    def forward(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode(), torch.autocast(device, dtype=torch.bfloat16):
            hidden = model(
                input_ids=torch.from_numpy(ids).to(device), attention_mask=torch.from_numpy(mask).to(device)
            ).last_hidden_state
        return hidden.float().cpu().numpy()

    return forward
