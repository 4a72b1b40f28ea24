"""Grouping items of several questionnaires into constructs by their similarity.

Average-linkage agglomerative clustering on ``100 - similarity``: two groups merge while
the mean similarity between their items is at least ``threshold``. Each cluster is
labelled by its most central item (the highest mean similarity to the others).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hybrid_sim.apps.match import read_items, similarity_matrix
from hybrid_sim.defaults import SAME_CONSTRUCT_THRESHOLD
from hybrid_sim.scorer.estimator import HybridScorer


def cluster(
    items: Sequence[str],
    model: HybridScorer | str | Path | None = None,
    *,
    threshold: float = SAME_CONSTRUCT_THRESHOLD,
    ids: Sequence[Any] | None = None,
) -> pd.DataFrame:
    """One row per item: ``item``, ``cluster`` (0, 1, ... by first appearance), ``label``
    (the cluster's most central item) and, when given, ``id``.

    >>> c = cluster(["I feel sad", "Felt down and sad", "Do you smoke?"], threshold=60)
    >>> list(c.columns)
    ['item', 'cluster', 'label']
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    if not 0 <= float(threshold) <= 100:
        raise ValueError(f"threshold must be a number in 0-100, got {threshold!r}")
    items = list(items)
    if ids is not None and len(ids) != len(items):
        raise ValueError(f"{len(ids)} ids for {len(items)} items")
    scores = similarity_matrix(items, items, model)
    scores = (scores + scores.T) / 2  # exactly symmetric already; keeps squareform strict
    if len(items) < 2:
        labels = np.zeros(len(items), dtype=int)
    else:
        distance = 100.0 - scores
        np.fill_diagonal(distance, 0.0)
        tree = linkage(squareform(np.clip(distance, 0, None), checks=False), method="average")
        raw = fcluster(tree, t=100.0 - threshold, criterion="distance")
        # number clusters by their first item, so the output reads in the input's order
        order = {c: k for k, c in enumerate(dict.fromkeys(raw))}
        labels = np.array([order[c] for c in raw])
    central = {}
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        inner = scores[np.ix_(members, members)].sum(axis=1)
        central[c] = items[members[int(np.argmax(inner))]]
    out = pd.DataFrame({"item": items, "cluster": labels, "label": [central[c] for c in labels]})
    if ids is not None:
        out.insert(0, "id", list(ids))
    return out


def cluster_files(
    inputs: Sequence[str | Path],
    output: str | Path,
    model: HybridScorer | str | Path | None = None,
    *,
    threshold: float | None = None,
    column: str | None = None,
    id_column: str | None = None,
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """``cluster`` the items of several files (text files or tables) together and write the
    table, with a ``source`` column naming each item's file, to ``output`` atomically.
    Items without ids are named ``FILE:LINE``. Returns the table written."""
    from hybrid_sim.outputs import check_output_file, write_table

    check_output_file(output, inputs=inputs)
    items: list[str] = []
    ids: list[Any] = []
    sources: list[str] = []
    for path in map(Path, inputs):
        texts, found = read_items(path, column, encoding=encoding, id_column=id_column)
        items += texts
        ids += found if found is not None else [f"{path.name}:{k + 1}" for k in range(len(texts))]
        sources += [path.name] * len(texts)
    table = cluster(items, model, threshold=SAME_CONSTRUCT_THRESHOLD if threshold is None else threshold,
                    ids=ids)
    table.insert(0, "source", sources)
    write_table(table, output, inputs=inputs)
    return table
