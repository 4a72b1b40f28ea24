"""Check a LightGBM text model before LightGBM parses it.

LightGBM's own parser trusts its input: a truncated or edited ``stacker.txt`` whose
sha256 was updated to match ends in a segmentation fault or an abort, which takes the
user's whole process down. This module reads the same text in Python and refuses
anything LightGBM could not read safely: a wrong header, tree sizes that do not add up,
arrays of the wrong length, child or feature indices out of range, non-finite numbers.
It accepts exactly the models this library writes (one regression output, numerical
splits, no linear trees), and hands LightGBM only what it checked: the header and the
trees, without the trailing parameter listing that predicting does not need.
"""

from __future__ import annotations

import math

# a tree's fields in LightGBM's order, each with its type and length: "s" for one value
# per split (num_leaves - 1), "l" for one per leaf, 1 for a single value
_TREE_FIELDS = (
    ("num_leaves", int, 1), ("num_cat", int, 1), ("split_feature", int, "s"),
    ("split_gain", float, "s"), ("threshold", float, "s"), ("decision_type", int, "s"),
    ("left_child", int, "s"), ("right_child", int, "s"), ("leaf_value", float, "l"),
    ("leaf_weight", float, "l"), ("leaf_count", int, "l"), ("internal_value", float, "s"),
    ("internal_weight", float, "s"), ("internal_count", int, "s"), ("is_linear", int, 1),
    ("shrinkage", float, 1),
)
_HEADER_KEYS = ("version", "num_class", "num_tree_per_iteration", "label_index",
                "max_feature_idx", "objective", "feature_names", "feature_infos", "tree_sizes")
_OBJECTIVES = ("regression_l1", "regression", "huber", "quantile")


class StackerTextError(ValueError):
    """The text is not a LightGBM model this library can load; the message says why."""


def _fields(block: str, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in block.splitlines():
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise StackerTextError(f"{where}: line {line[:40]!r} is not KEY=VALUE")
        out[key] = value
    return out


def _numbers(fields: dict[str, str], key: str, counts: tuple[int, ...], kind: type,
             where: str) -> list:
    if key not in fields:
        raise StackerTextError(f"{where}: {key} is missing")
    parts = fields[key].split()
    if len(parts) not in counts:
        raise StackerTextError(f"{where}: {key} has {len(parts)} values, expected {counts[0]}")
    try:
        values = [kind(p) for p in parts]
    except ValueError:
        raise StackerTextError(f"{where}: {key} holds a value that is not a number") from None
    if kind is float and not all(math.isfinite(v) for v in values):
        raise StackerTextError(f"{where}: {key} holds a value that is not finite")
    return values


def _tree(text: str, index: int, n_features: int) -> str:
    """One tree, every field checked, written again in LightGBM's order."""
    where = f"tree {index}"
    head, _, body = text.partition("\n")
    if head != f"Tree={index}":
        raise StackerTextError(f"{where}: starts with {head[:20]!r}, expected 'Tree={index}'")
    fields = _fields(body, where)
    leaves = _numbers(fields, "num_leaves", (1,), int, where)[0]
    if not 1 <= leaves <= 1 << 17:
        raise StackerTextError(f"{where}: num_leaves is {leaves}")
    splits = leaves - 1
    values: dict[str, list] = {}
    for key, kind, size in _TREE_FIELDS:
        counts: tuple[int, ...] = (1,) if size == 1 else (splits,) if size == "s" else (leaves,)
        if key == "leaf_weight" and leaves == 1:
            counts = (1, 0)  # LightGBM writes no weight for a tree of one leaf
        values[key] = _numbers(fields, key, counts, kind, where)
    if values["num_cat"] != [0] or values["is_linear"] != [0]:
        raise StackerTextError(f"{where}: categorical or linear trees are not models of this library")
    if any(not 0 <= f < n_features for f in values["split_feature"]):
        raise StackerTextError(f"{where}: split_feature names a feature outside 0-{n_features - 1}")
    if any(not 0 <= d < 16 or d & 1 for d in values["decision_type"]):
        raise StackerTextError(f"{where}: decision_type holds a categorical or unknown split")
    for side in ("left_child", "right_child"):
        # a child is an inner node (1 .. splits-1) or a leaf written as ~leaf (-1 .. -leaves)
        if any(not (-leaves <= c <= -1 or 1 <= c < splits) for c in values[side]):
            raise StackerTextError(f"{where}: {side} points outside the tree")
    lines = [f"Tree={index}"] + [f"{k}={' '.join(map(repr, values[k]))}" for k, _, _ in _TREE_FIELDS]
    return "\n".join(lines) + "\n\n\n"


def _header(fields: dict[str, str], n_features: int) -> str:
    """The header rebuilt from the keys LightGBM needs, each checked."""
    if fields.get("version") != "v4":
        raise StackerTextError(f"version {fields.get('version')!r} is not v4")
    if fields.get("objective", "").split(" ")[0] not in _OBJECTIVES:
        raise StackerTextError(f"objective {fields.get('objective')!r} is not a regression objective")
    if fields.get("label_index", "0") != "0":
        raise StackerTextError("label_index is not 0")
    for key in ("feature_names", "feature_infos"):
        if len(fields.get(key, "").split()) != n_features:
            raise StackerTextError(f"{key} does not list {n_features} features")
    for info in fields["feature_infos"].split():
        low, colon, high = info.strip("[]").partition(":")
        try:
            ok = info == "none" or (colon and info[0] == "[" and info[-1] == "]"
                                    and float(low) <= float(high))
        except ValueError:
            ok = False
        if not ok:
            raise StackerTextError(f"feature_infos entry {info[:30]!r} is not [low:high]")
    return "tree\n" + "".join(f"{k}={fields[k]}\n" for k in _HEADER_KEYS if k in fields)


def check_lightgbm_text(text: str, n_features: int) -> str:
    """The part of ``text`` LightGBM needs, checked whole and consistent; raise
    :class:`StackerTextError` unless it is a regression model over ``n_features`` features.

    >>> check_lightgbm_text("tree\\nversion=v4\\n", 1)
    Traceback (most recent call last):
    ...
    hybrid_sim.stacker.lightgbm_text.StackerTextError: the header lacks num_class, max_feature_idx, tree_sizes
    """
    if not text.startswith("tree\n"):
        raise StackerTextError("it does not start like a LightGBM text model ('tree')")
    start = text.find("\nTree=0\n")
    header = _fields(text[5:start if start >= 0 else len(text)], "header")
    missing = [k for k in ("num_class", "max_feature_idx", "tree_sizes") if k not in header]
    if missing:
        raise StackerTextError(f"the header lacks {', '.join(missing)}")
    if header["num_class"] != "1" or header.get("num_tree_per_iteration", "1") != "1":
        raise StackerTextError("it is not a single-output regression model")
    if header["max_feature_idx"] != str(n_features - 1):
        raise StackerTextError(f"it reads {header['max_feature_idx']!r} + 1 features, the manifest "
                               f"lists {n_features}")
    try:
        sizes = [int(s) for s in header["tree_sizes"].split()]
    except ValueError:
        raise StackerTextError("tree_sizes holds a value that is not a whole number") from None
    end = text.find("\nend of trees\n")
    if start < 0 or end < 0 or not sizes or min(sizes) <= 0:
        raise StackerTextError("it is incomplete (no trees, or no 'end of trees')")
    if sum(sizes) != end + 1 - (start + 1):
        raise StackerTextError("its tree_sizes do not match the trees it holds (truncated or edited)")
    offset, trees = start + 1, []
    for index, size in enumerate(sizes):
        trees.append(_tree(text[offset:offset + size].rstrip("\n"), index, n_features))
        offset += size
    header["tree_sizes"] = " ".join(str(len(t.encode())) for t in trees)
    return _header(header, n_features) + "\n" + "".join(trees) + "end of trees\n"
