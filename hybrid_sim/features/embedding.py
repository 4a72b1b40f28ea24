"""The embedding group: cosine of a fine-tuned sentence encoder, plus base-model cosines.

``fit_transform(X, y)`` cross-fits (like scikit-learn's ``TargetEncoder``): the tuned
cosine it returns for each training pair comes from a model that never saw that pair,
while ``transform`` uses one model fine-tuned on every pair.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from hybrid_sim.defaults import DEFAULT_BASE
from hybrid_sim.encoders.encoder import Encoder
from hybrid_sim.features.base import PairFeatures
from hybrid_sim.model_selection import CrossFit, cached_out_of_fold, grouped_folds, out_of_fold
from hybrid_sim.pairs import check_target, pair_key, to_pairs

# measured under grouped CV (docs/embedding.md): LoRA wants a far larger step than full
DEFAULT_LR = {"lora": 5e-4, "top_layers": 1e-4, "full": 2e-5}


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", Path(name).name.lower()).strip("_")


def _rated_keys(left: list[str], right: list[str]) -> set[str]:
    return {pair_key(a, b) for a, b in zip(left, right)}


# enumerate every pair of sentences up to this many; past it, draw pairs at random
_ENUMERATE_PAIRS = 2_000_000


def _unrated_pairs(left: list[str], right: list[str], rated: set[str], limit: int,
                   seed: int) -> tuple[list[str], list[str]]:
    """Up to ``limit`` pairs of distinct sentences of ``left``/``right`` not in ``rated``.

    All of them, in sorted-sentence order, when there are at most ``limit``; otherwise a
    seeded random sample.

    >>> _unrated_pairs(["a", "b"], ["b", "c"], {pair_key("a", "b"), pair_key("b", "c")}, 5, 0)
    (['a'], ['c'])
    """
    sentences = sorted(set(left) | set(right))
    n = len(sentences)
    rng = np.random.default_rng(seed)
    if n * (n - 1) // 2 <= _ENUMERATE_PAIRS:
        i, j = np.triu_indices(n, 1)
        keep = [k for k in range(len(i)) if pair_key(sentences[i[k]], sentences[j[k]]) not in rated]
        if len(keep) > limit:
            keep = sorted(rng.choice(keep, size=limit, replace=False).tolist())
        return [sentences[i[k]] for k in keep], [sentences[j[k]] for k in keep]
    limit = min(limit, n * (n - 1) // 2 - len(rated))  # rated pairs of these sentences at most
    chosen: dict[str, tuple[int, int]] = {}
    while len(chosen) < limit:
        for a, b in rng.integers(0, n, size=(2 * limit, 2)):
            key = pair_key(sentences[a], sentences[b])
            if a != b and key not in rated and key not in chosen:
                chosen[key] = (min(a, b), max(a, b))
                if len(chosen) == limit:
                    break
    return [sentences[a] for a, _ in chosen.values()], [sentences[b] for _, b in chosen.values()]


class EmbeddingCosine(PairFeatures):
    """Cosine similarity of normalised sentence embeddings.

    Features: ``cosine_tuned`` (fine-tuned on the human ratings; absent when
    ``method="none"``), ``cosine_base`` (the base model as shipped; absent when
    ``base_cosine=False``) and one zero-shot ``cosine_<name>`` per model in ``extra_bases``.
    With ``n_seeds > 1`` the tuned cosine is the mean over that many fine-tunes with seeds
    ``seed, seed + 1, ...`` (the cross-fitting folds always come from ``seed``); with
    ``soup=True`` their LoRA weights are averaged into one encoder instead (one encode per
    sentence instead of ``n_seeds``; see ``Encoder.soup``).
    ``ensemble`` adds more fine-tuned models, each a dict of settings that override this
    group's (e.g. ``{"base_model": "all-mpnet-base-v2", "lora_layers": 2, "learning_rate":
    1e-3, "epochs": 2}``); the tuned cosine is then the mean of this model's (over its
    seeds) and theirs. Each is cross-fitted on the same folds and cached on its own.
    ``teachers`` (dicts of the same form) distil instead: those models are fine-tuned on
    the same pairs, their mean cosine labels up to ``distill_pairs`` pairs of the training
    sentences that no row rates, and this model is fine-tuned on the rated and the
    teacher-labelled pairs together. Only this model is kept: the teachers cost training
    time, never inference.

    >>> emb = EmbeddingCosine(method="none").fit([["I feel sad", "I feel down"]])
    >>> list(emb.get_feature_names_out())
    ['embedding__cosine_base']
    >>> bool(emb.transform([["I feel sad", "I feel sad"]])[0, 0] > 0.999)
    True
    """

    group: ClassVar[str] = "embedding"

    def __init__(
        self,
        base_model: str = DEFAULT_BASE,
        method: str = "lora",
        epochs: int = 4,
        learning_rate: float | None = None,
        batch_size: int = 16,
        loss: str = "cosine",
        lora_r: int = 16,
        lora_layers: int | None = None,
        cv: int = 5,
        extra_bases: tuple[str, ...] = (),
        base_cosine: bool = True,
        n_seeds: int = 1,
        soup: bool = False,
        ensemble: tuple[dict[str, Any], ...] = (),
        teachers: tuple[dict[str, Any], ...] = (),
        distill_pairs: int = 10_000,
        seed: int = 0,
        show_progress: bool = False,
        cache: bool = True,
    ) -> None:
        self.base_model = base_model
        self.method = method
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.loss = loss
        self.lora_r = lora_r
        self.lora_layers = lora_layers
        self.cv = cv
        self.extra_bases = extra_bases
        self.base_cosine = base_cosine
        self.n_seeds = n_seeds
        self.soup = soup
        self.ensemble = ensemble
        self.teachers = teachers
        self.distill_pairs = distill_pairs
        self.seed = seed
        self.show_progress = show_progress
        self.cache = cache

    @property
    def feature_names(self) -> tuple[str, ...]:  # type: ignore[override]
        tuned = ("cosine_tuned",) if self.method != "none" else ()
        base = ("cosine_base",) if self.base_cosine else ()
        return (*tuned, *base, *(f"cosine_{_slug(b)}" for b in self.extra_bases))

    def _check_params(self) -> None:
        if not self.feature_names:
            raise ValueError("the embedding group has no feature: method='none' needs base_cosine=True "
                             "or extra_bases")
        if int(self.n_seeds) < 1 or (self.n_seeds > 1 and self.method == "none"):
            raise ValueError(f"n_seeds must be >= 1 (and 1 when method='none'), got {self.n_seeds!r}")
        if self.soup and (self.method != "lora" or self.n_seeds < 2):
            raise ValueError("soup=True averages LoRA seeds: it needs method='lora' and n_seeds >= 2")
        if (self.ensemble or self.teachers) and self.method == "none":
            raise ValueError("ensemble and teachers need a fine-tuned model: a method other than 'none'")
        if self.teachers and int(self.distill_pairs) < 1:
            raise ValueError(f"distill_pairs must be >= 1 with teachers, got {self.distill_pairs!r}")
        self._partners()
        self._teachers()

    def _partners(self) -> list[EmbeddingCosine]:
        """One unfitted group per ``ensemble`` entry: this group's settings, overridden."""
        return self._variants("ensemble", self.ensemble)

    def _teachers(self) -> list[EmbeddingCosine]:
        """One unfitted group per ``teachers`` entry: this group's settings, overridden."""
        return self._variants("teachers", self.teachers)

    def _variants(self, label: str, entries: tuple[dict[str, Any], ...]) -> list[EmbeddingCosine]:
        variants = []
        for k, overrides in enumerate(entries):
            if not isinstance(overrides, dict):
                raise ValueError(f"{label}[{k}] must be a dict of settings, got {overrides!r}")
            own = {"ensemble", "teachers", "base_cosine", "extra_bases", "n_seeds", "soup"} & set(overrides)
            if own:
                raise ValueError(f"{label}[{k}] cannot set {sorted(own)}")
            variant = clone(self).set_params(ensemble=(), teachers=(), base_cosine=False, extra_bases=(),
                                             n_seeds=1, soup=False)
            try:
                variant.set_params(**overrides)
            except ValueError as exc:
                raise ValueError(f"{label}[{k}]: {exc}") from None
            if variant.method == "none":
                raise ValueError(f"{label}[{k}] must fine-tune (method other than 'none')")
            variants.append(variant)
        return variants

    def _member_seeds(self) -> list[int]:
        return [self.seed + j for j in range(self.n_seeds)]

    # -- training ---------------------------------------------------------------------
    def _new_encoder(self) -> Encoder:
        return Encoder(self.base_model, method=self.method, lora_r=self.lora_r,
                       lora_layers=self.lora_layers)

    def _tune(self, left: list[str], right: list[str], y: np.ndarray, seed: int) -> Encoder:
        lr = self.learning_rate or DEFAULT_LR[self.method]
        return self._new_encoder().fine_tune(
            left, right, y / 100.0, epochs=self.epochs, learning_rate=lr,
            batch_size=self.batch_size, loss=self.loss, seed=seed,
            show_progress=self.show_progress,
        )

    def _tune_seeds(self, left: list[str], right: list[str], y: np.ndarray, seeds: list[int],
                    rated: set[str]) -> list[Encoder]:
        """One fine-tuned encoder per seed; with ``teachers``, each distilled from them.

        ``rated`` holds the pair keys of every rated row, held-out ones included, so that a
        teacher never labels a pair whose rating a cross-fitted model must not see.
        """
        if not self.teachers:
            return [self._tune(left, right, y, s) for s in seeds]
        extra_left, extra_right = _unrated_pairs(left, right, rated, self.distill_pairs, self.seed)
        labels = np.mean([t._tune(left, right, y, t.seed).cosine(extra_left, extra_right)
                          for t in self._teachers()], axis=0)
        # teacher cosines are on the rating scale / 100, like the targets
        return [self._tune([*left, *extra_left], [*right, *extra_right],
                           np.concatenate([y, 100.0 * labels]), s) for s in seeds]

    def _checked_target(self, y: Any, n: int) -> np.ndarray:
        if self.method == "none":
            return np.zeros(n)
        if y is None:
            raise ValueError("fine-tuning needs the human ratings: call fit(X, y)")
        return check_target(y, n)

    def _zero_shot_encoders(self) -> None:
        self.base_ = Encoder(self.base_model, method="none") if self.base_cosine else None
        self.extra_ = [Encoder(b, method="none") for b in self.extra_bases]

    def fit(self, X: Any, y: Any = None) -> EmbeddingCosine:
        self._check_params()
        left, right = to_pairs(X)
        target = self._checked_target(y, len(left))
        self._zero_shot_encoders()
        rated = _rated_keys(left, right)
        self.encoders_ = (self._tune_seeds(left, right, target, self._member_seeds(), rated)
                          if self.method != "none" else [])
        if self.soup:
            self.encoders_ = [Encoder.soup(self.encoders_)]
        self.partners_ = [p.fit(X, target) for p in self._partners()]
        self.n_features_in_ = 2
        self.fitted_ = True
        return self

    def cross_fit(self, X: Any, y: Any) -> CrossFit:
        """Out-of-fold tuned cosines: ``cv`` models, each blind to its held-out pairs.

        With ``cache=True`` the result is kept on disk (see ``crossfit.cached_out_of_fold``)
        keyed by the data, these settings and the base model's hash.
        """
        self._check_params()
        left, right = to_pairs(X)
        target = self._checked_target(y, len(left))
        folds = grouped_folds(left, right, n_splits=self.cv, seed=self.seed)
        seeds = self._member_seeds()
        # each fold's soup needs every seed's model of that fold, so a soup is one entry;
        # averaged seeds are one entry each, so that more seeds reuse the first ones
        members = ([self._cross_fit_seeds(left, right, target, folds, seeds)] if self.soup else
                   [self._cross_fit_seeds(left, right, target, folds, [s]) for s in seeds])
        partners = [p.cross_fit(X, target) for p in self._partners()]
        if len(members) == 1 and not partners:
            return members[0]
        oof = np.mean([np.mean([m.oof for m in members], axis=0), *(p.oof for p in partners)], axis=0)
        return CrossFit(oof=oof, folds=folds, seen_pairs=members[0].seen_pairs,
                        cached=all(c.cached for c in (*members, *partners)))

    def _cross_fit_seeds(self, left: list[str], right: list[str], target: np.ndarray,
                         folds: list[tuple[np.ndarray, np.ndarray]], seeds: list[int]) -> CrossFit:
        rated = _rated_keys(left, right)

        def fit_predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
            tuned = self._tune_seeds([left[i] for i in train], [right[i] for i in train], target[train],
                                     seeds, rated)
            encoder = tuned[0] if len(tuned) == 1 else Encoder.soup(tuned)
            return encoder.cosine([left[i] for i in test], [right[i] for i in test])

        if not self.cache:
            return out_of_fold(fit_predict, left, right, folds)
        # only what changes the tuned cosines of one member belongs in the key, so an
        # ensemble reuses the single-seed result and dropping a zero-shot feature costs nothing
        config = {
            "format": "hybrid_sim.crossfit/2",
            "base_sha256": self._new_encoder().fingerprint,
            **{k: v for k, v in self.get_params().items()
               if k not in ("show_progress", "cache", "extra_bases", "base_cosine", "n_seeds", "ensemble",
                            "soup")
               # absent from keys written before the option existed: those stay valid
               and not (k == "lora_layers" and v is None)
               and not (k in ("teachers", "distill_pairs") and not self.teachers)},
            **({"seed": seeds[0]} if len(seeds) == 1 else {"soup_seeds": seeds}),
            "fold_seed": self.seed,
            "learning_rate": self.learning_rate or DEFAULT_LR[self.method],
        }
        return cached_out_of_fold(config, fit_predict, left, right, target, folds)

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        """Fit on all pairs, but return out-of-fold tuned cosines for the training rows."""
        if self.method == "none":
            return self.fit(X, y).transform(X)
        crossfit = self.cross_fit(X, y)
        self.fit(X, y)
        self.crossfit_ = crossfit
        out = self.transform(X)
        out[:, 0] = crossfit.oof
        return out

    # -- inference ---------------------------------------------------------------------
    def _features(self, left: list[str], right: list[str]) -> np.ndarray:
        columns = []
        if self.encoders_:
            tuned = np.mean([e.cosine(left, right) for e in self.encoders_], axis=0)
            partners = [p._features(left, right)[:, 0] for p in self.partners_]
            columns.append(np.mean([tuned, *partners], axis=0))
        columns += [e.cosine(left, right) for e in self._zero_shot()]
        return np.column_stack(columns)

    def _zero_shot(self) -> list[Encoder]:
        return [*([self.base_] if self.base_ is not None else []), *self.extra_]

    # -- persistence ---------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        check_is_fitted(self, "fitted_")
        state: dict[str, Any] = {
            "base_sha256": self._new_encoder().fingerprint,
            "extra_sha256": [e.fingerprint for e in self.extra_],
        }
        if self.partners_:
            state["partners"] = [p.get_state() for p in self.partners_]
        return state

    def _member_folders(self, folder: Path) -> list[Path]:
        # one seed (or one soup of seeds) keeps the adapter at the top of the folder, as
        # models saved before n_seeds did
        if self.n_seeds == 1 or self.soup:
            return [folder]
        return [folder / f"seed_{s}" for s in self._member_seeds()]

    def save_files(self, folder: Path) -> list[Path]:
        """Write the fine-tuned adapter(s) into ``folder``; return the files written."""
        check_is_fitted(self, "fitted_")
        files = [f for encoder, sub in zip(self.encoders_, self._member_folders(folder))
                 for f in encoder.save(sub)]
        for k, partner in enumerate(self.partners_):
            files += partner.save_files(folder / f"ensemble_{k}")
        return files

    def load_files(self, folder: Path, state: dict[str, Any]) -> EmbeddingCosine:
        """Restore from ``save_files`` output and ``get_state``; base hashes must match."""
        self._check_params()
        self._zero_shot_encoders()
        for encoder, expected in zip(
            [self._new_encoder(), *self.extra_], [state["base_sha256"], *state["extra_sha256"]]
        ):
            if encoder.fingerprint != expected:
                raise ValueError(
                    f"base model {encoder.base_model!r} at {encoder.base_path} is not the one "
                    f"this model was trained with (sha256 {expected[:12]}...)"
                )
        self.encoders_ = ([Encoder.load(sub, self.base_model) for sub in self._member_folders(folder)]
                          if self.method != "none" else [])
        partner_states = state.get("partners", [])
        partners = self._partners()
        if len(partner_states) != len(partners):
            raise ValueError(f"the model lists {len(partners)} ensemble members but records "
                             f"{len(partner_states)}")
        self.partners_ = [p.load_files(folder / f"ensemble_{k}", s)
                          for k, (p, s) in enumerate(zip(partners, partner_states))]
        self.n_features_in_ = 2
        self.fitted_ = True
        return self
