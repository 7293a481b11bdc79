import pytest

from pipeline.evaluate import score


def test_perfect_clustering_scores_one() -> None:
    gold = {"a": "x", "b": "x", "c": "y"}
    result = score({"a": "1", "b": "1", "c": "2"}, gold)
    assert (result.bcubed_f1, result.pairwise_f1, result.ari) == (1.0, 1.0, 1.0)


def test_known_bcubed_values() -> None:
    gold = {"a": "x", "b": "x", "c": "x", "d": "y"}
    predicted = {"a": "1", "b": "1", "c": "2", "d": "2"}
    result = score(predicted, gold)
    # precision: a,b -> 1; c,d -> 1/2 each => 3/4. recall: a,b -> 2/3; c -> 1/3; d -> 1 => 2/3.
    assert result.bcubed_precision == pytest.approx(0.75)
    assert result.bcubed_recall == pytest.approx(0.6667, abs=1e-4)
    assert result.n_items == 4


def test_all_singletons_against_one_story() -> None:
    gold = {str(i): "x" for i in range(4)}
    result = score({str(i): str(i) for i in range(4)}, gold)
    assert result.bcubed_precision == 1.0 and result.bcubed_recall == 0.25 and result.pairwise_f1 == 0.0
