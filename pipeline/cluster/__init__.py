"""Cluster stage: turn the evidence graph into stories. One module per concept:

- `cores`: HDBSCAN on the sparse `density` distances, per connected component of the candidate graph:
  dense cores of reports of one event (copies, close rewrites). A noise item joins the core of its most
  similar neighbour when that evidence is strong enough, else it stays alone (a one-item story, never
  dropped); stored stories take no item this way. Every member of a core must stand with the core as a
  whole (mean similarity to the other members at least `merge_similarity`, the merge rule): in a run of a
  handful of items HDBSCAN's density is no evidence, and this keeps a core from chaining two events.
- `linkage`: cores merge by average linkage on `similarity` while the average over all their member pairs
  stays at or above `merge_similarity`. The items enter in clock slices of `merge_step_minutes` (the order
  of the news, `pipeline.timeline`), and at each step the stories built so far take part as whole groups,
  so one run over a day's file builds the stories that runs every few minutes would have built.
- `cohesion`: two stories of full texts merge only if they name about the same names across as each does
  within (`merge_cohesion`): two halves of one event do, two events of one topic do not.
- `groupsums`: the per-group sums from which every mean over member pairs is computed exactly.

Time is evidence, not a gate (`pipeline.timeline`): a story never closes inside the merge. How far apart
two reports' events lie enters the pair score as the date agreement of their event dates (what the texts
name, else the publication date), and an undated report is neutral on time. So a follow-up three weeks on
that names the same place, people and event date joins its story, and a report of another shooting does
not.

In an incremental run the members of stories already stored come in as fixed groups (`fixed`): only the
new items go through the cores, and the linkage treats each stored story as one group. A new item thus
joins a story by the same rule that built the story in one run (the average over all its members), and
two stored stories join only when the new reports make their average pass the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.cluster.cohesion import StoryPairEvidence, story_pair_evidence
from pipeline.cluster.cores import cohesive_cores, density_cores, relabel
from pipeline.cluster.groupsums import GroupSums, member_fit
from pipeline.cluster.linkage import merge_in_time_order
from pipeline.config import ClusterConfig
from pipeline.similarity import EvidenceGraph, collector_paused
from pipeline.timeline import merge_steps

__all__ = ["Clustering", "StoryPairEvidence", "cluster", "member_fit", "story_pair_evidence"]


@dataclass
class Clustering:
    """A story label per item (0..k-1, in order of first appearance) and counters."""

    labels: np.ndarray
    cores: int
    attached: int
    merges: int


def cluster(graph: EvidenceGraph, config: ClusterConfig, fixed: np.ndarray | None = None) -> Clustering:
    """Label every item; `fixed[i] >= 0` puts item i in a given group that stays whole (-1: free item)."""
    fixed = np.full(graph.n, -1, dtype=np.int64) if fixed is None else np.asarray(fixed, dtype=np.int64)
    with collector_paused():
        cores, attached = density_cores(graph, config, fixed)
        single = GroupSums.items(graph.features)
        cores = cohesive_cores(single, cores, fixed, config)
        steps = merge_steps(graph.features.timestamps, fixed, config.merge_step_minutes)
        _, pieces = np.unique(cores * (steps.max() + 1) + steps, return_inverse=True)  # cores cut at step edges
        merged, merges = merge_in_time_order(graph, single, pieces, steps, config)
    return Clustering(labels=relabel(merged), cores=int(cores.max(initial=-1) + 1), attached=attached, merges=merges)
