"""hybrid_sim: how similar are two questionnaire items, on the 0-100 scale of human raters."""

__version__ = "0.1.0"
