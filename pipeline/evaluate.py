"""Clustering quality against a gold labelling: BCubed precision/recall/F1, pairwise F1 and ARI.

Only items present in both the prediction and the gold are scored; the counts of items missing on either
side are reported so a partial run cannot pass silently.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.errors import InputError


@dataclass(frozen=True)
class Scores:
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    pairwise_f1: float
    ari: float
    n_items: int
    n_missing_from_db: int = 0
    n_not_in_gold: int = 0

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def read_gold(path: str | Path) -> dict[str, str]:
    """Read `{"id", "story"}` lines into {id: story}."""
    gold: dict[str, str] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"gold file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as problem:
        raise InputError(f"cannot read gold file {path}: {problem}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            gold[str(row["id"])] = str(row["story"])
        except (json.JSONDecodeError, KeyError, TypeError):
            raise InputError(f"{path}:{number}: expected a JSON object with 'id' and 'story'") from None
    return gold


def score(predicted: Mapping[str, str], gold: Mapping[str, str]) -> Scores:
    """Score a predicted {item: cluster} against gold {item: story} on their common items."""
    items = sorted(set(predicted) & set(gold))
    if not items:
        raise InputError("no item of the gold file is in the database")
    pred = [predicted[i] for i in items]
    true = [gold[i] for i in items]
    joint = Counter(zip(pred, true, strict=True))
    pred_sizes = Counter(pred)
    true_sizes = Counter(true)
    n = len(items)
    # BCubed: for each item, the share of its cluster with its gold story (precision) and vice versa.
    precision = sum(count * count / pred_sizes[p] for (p, _), count in joint.items()) / n
    recall = sum(count * count / true_sizes[t] for (_, t), count in joint.items()) / n
    f1 = _harmonic(precision, recall)

    def pairs(count: int) -> float:
        return count * (count - 1) / 2

    same_both = sum(pairs(c) for c in joint.values())
    same_pred = sum(pairs(c) for c in pred_sizes.values())
    same_true = sum(pairs(c) for c in true_sizes.values())
    pair_p = same_both / same_pred if same_pred else 1.0
    pair_r = same_both / same_true if same_true else 1.0
    total = pairs(n)
    expected = same_pred * same_true / total if total else 0.0
    maximum = (same_pred + same_true) / 2
    ari = (same_both - expected) / (maximum - expected) if maximum != expected else 1.0
    return Scores(
        bcubed_precision=round(precision, 4),
        bcubed_recall=round(recall, 4),
        bcubed_f1=round(f1, 4),
        pairwise_f1=round(_harmonic(pair_p, pair_r), 4),
        ari=round(ari, 4),
        n_items=n,
        n_missing_from_db=len(set(gold) - set(predicted)),
        n_not_in_gold=len(set(predicted) - set(gold)),
    )


def _harmonic(left: float, right: float) -> float:
    return 2 * left * right / (left + right) if left + right else 0.0
