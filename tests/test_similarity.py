"""Evidence signals whose meaning does not depend on the batch."""

from __future__ import annotations

import numpy as np


def test_term_weights_come_from_a_fixed_reference_not_the_batch() -> None:
    from pipeline.similarity import _tfidf_matrices, term_weights

    common, rare = term_weights(["the", "police", "kokomo"])[[0, 1]], term_weights(["kokomo"])[0]
    assert common[0] == 0.0 and 0 < common[1] < rare
    pair = ["Shooting at Kokomo bar sends 4 to hospital", "Four people shot outside Kokomo nightclub"]
    alone = _tfidf_matrices(pair)
    crowd = _tfidf_matrices(pair + ["Kokomo council meets", "Markets fall in Tokyo"] * 20)
    for small, large in zip(alone, crowd, strict=True):
        assert np.isclose((small[0] @ small[1].T).toarray()[0, 0], (large[0] @ large[1].T).toarray()[0, 0])
