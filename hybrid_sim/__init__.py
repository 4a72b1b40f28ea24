"""hybrid_sim: how similar are two questionnaire items, on the 0-100 scale of human raters.

>>> from hybrid_sim import score
>>> 0 <= score("I feel sad", "I feel down") <= 100
True
"""

from hybrid_sim.api import evaluate, load, score, train
from hybrid_sim.apps.clustering import cluster
from hybrid_sim.apps.polarity import compare
from hybrid_sim.scorer.estimator import HybridScorer

__version__ = "0.1.0"

__all__ = ["HybridScorer", "__version__", "cluster", "compare", "evaluate", "load", "score", "train"]
