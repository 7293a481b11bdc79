"""The embedding backends: the choice `auto` makes, token-budget batches, and vectors of the real model that
agree with sentence-transformers' fp32 reference."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.config import EmbedConfig
from pipeline.embed import Embedder, cpu_has_native_bf16, model_id, model_path, resolved_backend
from pipeline.encoding import token_batches
from pipeline.errors import ModelError

TEXTS = [
    "Quake of magnitude 7.1 hits central Chile, tsunami warning lifted",
    "Lakers beat Celtics 102-98 in overtime",
    "Ukraine Defense Contact Group meets at Ramstein to pledge more air defence for Kyiv; ministers of fifty "
    "countries attended and promised new deliveries before winter, the US defence secretary said.",
    "Apple unveils a new iPhone",
    "",
]


@given(
    lengths=st.lists(st.integers(1, 256), max_size=300).map(sorted),
    budget=st.integers(256, 20_000),
    most=st.integers(1, 500),
)
def test_token_batches_cover_every_text_once_in_order_within_the_budget(
    lengths: list[int], budget: int, most: int
) -> None:
    parts = list(token_batches(np.array(lengths, dtype=np.int64), budget, most))
    assert [i for part in parts for i in range(part.start, part.stop)] == list(range(len(lengths)))
    for part in parts:
        count = part.stop - part.start
        assert 1 <= count <= most
        assert count == 1 or count * lengths[part.stop - 1] <= budget


def test_token_batches_hold_many_short_texts_and_few_long_ones() -> None:
    def counts(lengths: np.ndarray) -> list[int]:
        return [part.stop - part.start for part in token_batches(lengths, 64 * 256, 1024)]

    assert counts(np.full(1000, 16)) == [1000]  # 1,000 headlines of 16 tokens: one batch
    assert counts(np.full(100, 256)) == [64, 36]  # full-length articles: 64 a batch


@pytest.mark.parametrize(
    ("flags", "native"),
    [("fpu sse avx2 avx512f amx_bf16 amx_tile", True), ("fpu avx512f avx512_bf16", True), ("fpu avx2 fma", False)],
)
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path: Path, flags: str, native: bool) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: {flags}\n")
    assert cpu_has_native_bf16(str(cpuinfo)) is native
    assert cpu_has_native_bf16(str(tmp_path / "absent")) is False


def test_auto_stands_for_bf16_only_where_the_cpu_computes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.embed as embed

    for native, expected, kind in ((True, "torch-bf16", "torch-bf16-activations"), (False, "onnx", "onnx")):
        monkeypatch.setattr(embed, "cpu_has_native_bf16", lambda native=native: native)
        assert resolved_backend(EmbedConfig(backend="auto")) == expected
        assert model_id(EmbedConfig(backend="auto")).split(":")[1] == kind
    assert resolved_backend(EmbedConfig(backend="onnx-int8")) == "onnx-int8"
    assert model_id(EmbedConfig(backend="onnx-int8")).split(":")[1] == "onnx-int8-per-channel"


def test_a_lean_backend_refuses_a_model_that_does_not_pool_by_the_mean(tmp_path: Path) -> None:
    source = model_path(EmbedConfig())
    model = tmp_path / "cls-model"
    shutil.copytree(source, model, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "onnx"))
    (model / "model.safetensors").symlink_to(source / "model.safetensors")
    pooling = model / "1_Pooling" / "config.json"
    pooling.write_text(
        json.dumps(
            json.loads(pooling.read_text()) | {"pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}
        )
    )
    with pytest.raises(ModelError, match='supports mean-pooling models only.*embed.backend = "torch"'):
        Embedder(EmbedConfig(model=str(model), backend="torch-bf16")).encode(["Quake hits Chile"])


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """sentence-transformers' own fp32 encode of the texts (the `torch` backend)."""
    return Embedder(EmbedConfig(backend="torch")).encode(TEXTS)


@pytest.mark.parametrize(("backend", "least_cosine"), [("onnx", 0.99999), ("torch-bf16", 0.9995), ("onnx-int8", 0.97)])
def test_every_backend_gives_the_reference_vectors_in_the_texts_order(
    reference: np.ndarray, backend: str, least_cosine: float
) -> None:
    vectors = Embedder(EmbedConfig(backend=backend, batch_size=2)).encode(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == reference.shape
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = (vectors * reference).sum(axis=1)
    assert cosines.min() >= least_cosine, cosines
    # Each text is nearest to its own reference vector: the order was restored after sorting by length.
    assert list((vectors @ reference.T).argmax(axis=1)) == list(range(len(TEXTS)))


def test_the_plain_bert_forward_gives_transformers_hidden_states() -> None:
    """pipeline.bert against `transformers.BertModel` on a padded batch: the same fp32 hidden states wherever a
    token is attended (padding positions are never pooled)."""
    import torch
    from tokenizers import Tokenizer
    from transformers import BertModel

    from pipeline.bert import BertEncoder, supported

    path = model_path(EmbedConfig())
    assert supported(path)
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    tokenizer.enable_padding()
    encodings = tokenizer.encode_batch(TEXTS)
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    ours = BertEncoder(path, bfloat16=False)(ids, mask)
    with torch.inference_mode():
        theirs = BertModel.from_pretrained(str(path)).eval()(
            input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)
        )
    attended = mask.astype(bool)
    np.testing.assert_allclose(ours[attended], theirs.last_hidden_state.numpy()[attended], atol=2e-5)


@pytest.mark.parametrize(
    ("change", "covered"),
    [
        ({}, True),
        ({"hidden_act": "gelu_new"}, False),
        ({"position_embedding_type": "relative_key"}, False),
        ({"model_type": "roberta"}, False),
    ],
)
def test_a_checkpoint_the_plain_forward_does_not_cover_is_left_to_transformers(
    tmp_path: Path, change: dict[str, str], covered: bool
) -> None:
    from pipeline.bert import supported

    source = model_path(EmbedConfig())
    (tmp_path / "model.safetensors").symlink_to(source / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps(json.loads((source / "config.json").read_text()) | change))
    assert supported(tmp_path) is covered


def test_bf16_through_transformers_gives_the_reference_vectors(
    reference: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path a non-BERT checkpoint takes, exercised on the bundled model."""
    import pipeline.bert as bert

    monkeypatch.setattr(bert, "supported", lambda model_dir: False)
    vectors = Embedder(EmbedConfig(backend="torch-bf16", batch_size=2)).encode(TEXTS)
    assert (vectors * reference).sum(axis=1).min() >= 0.9995
