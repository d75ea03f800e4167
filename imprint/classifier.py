"""The IMPRINT framework as a scikit-learn classifier."""

from __future__ import annotations

import numbers

import numpy as np
import scipy.special
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from imprint.agg import (
    AGG_METHODS,
    CPU_CHUNK_ELEMENTS,
    SCALINGS,
    TestEmbeddings,
    class_index,
    class_scores,
    predict_all,
)
from imprint.devices import DEVICES, DTYPES, resolve_device
from imprint.gen import (
    COMPAT_MODES,
    GEN_REGISTRY,
    PER_CLASS_METHODS,
    class_proxies,
    gen_method,
    generate_proxies,
)
from imprint.norm import (
    NORM_INF,
    NORM_POST,
    NORM_PRE,
    l2_normalize,
    normalize_embeddings,
    normalize_proxies,
    quantile_map,
)


def resolve_seed(random_state) -> int:
    """An int seed: ``random_state`` itself if it is an int, else one drawn from it."""
    if isinstance(random_state, numbers.Integral):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


class ImprintingClassifier(ClassifierMixin, BaseEstimator):
    """Weight imprinting on fixed embeddings: GEN + NORM + AGG (Westerhoff et al., TMLR 2025).

    Fitting generates proxies (classifier weight vectors) straight from the training embeddings;
    nothing is learned by gradient descent.

    Parameters
    ----------
    gen : str, a name of :data:`imprint.gen.GEN_REGISTRY`
        How proxies are generated per class (see :func:`imprint.gen.generate_proxies`), e.g.
        ``all``: every embedding; ``random``: k random embeddings; ``mean``: the mean;
        ``kmeans``: k-means centres (seeded); ``kmedoids``: FasterPAM medoids
        (``kmedoids_alternate``: the IMPRINT authors' alternating k-medoids); ``covmax``: the k
        embeddings with the largest covariance score; ``fps``: farthest-point sampling from a
        random start; ``ls``: least squares (closed-form ridge regression of one-hot targets,
        ridge term ``ls_lambda``); ``kls``: k-least-squares (k-means splits each class into k
        pseudo-classes, then least squares over all of them). A class with fewer than k samples
        keeps all its samples.
    k : int >= 1
        Proxies per class for the methods that use k (:data:`imprint.gen.K_METHODS`); ignored by
        the others.
    norm_pre : {"none", "l2"}
        NORMpre: L2-normalise the training embeddings before GEN.
    norm_post : {"none", "l2", "quantile"}
        NORMpost: L2-normalise each proxy, or quantile-normalise: classes are imprinted in label
        order, the first class's proxies stay as they are and every later proxy's values are mapped
        rank-wise onto the distribution of the values of the proxies imprinted before it.
    norm_inf : {"none", "l2"}
        NORMinf: L2-normalise the test embeddings.
    agg : {"max", "mnn"}
        AGG max: predict the class whose best proxy has the largest inner product with the
        embedding. AGG mnn: the ``m`` nearest proxies by Euclidean distance vote for their class,
        each vote weighted by 1/distance. Ties go to the first class.
    m : int >= 1
        Neighbours for ``agg="mnn"`` (clipped to the number of proxies); ignored by max.
    ls_lambda : float > 0
        Ridge term λ of ls/kls.
    random_state : int, RandomState instance or None
        Seeds random/kmeans/kmedoids/fps/kls; an int makes ``fit`` deterministic.
    device : {"auto", "cpu", "cuda"}
        Where ``predict`` scores embeddings against the proxies ("auto": CUDA when available).
        Inputs and outputs stay numpy arrays; the k-means and farthest-point sampling of GEN
        run there too (the same proxies on every device up to floating-point ties).
    compat : {"none", "paper"}
        "paper": k-means, k-medoids, random and FPS as the IMPRINT authors' code runs them
        (see :func:`imprint.gen.generate_proxies`).
    dtype : {"float32", "float64"}
        Precision of scoring. The workflow's grid runner uses the same engine, so for the same
        device and dtype its accuracies equal this estimator's exactly.
    proba_scale : float > 0
        ``predict_proba`` for AGG max: softmax of ``proba_scale`` times the class scores (with
        L2 NORMpost and NORMinf the scores are cosines; 10 is the scale Qi et al.'s cosine
        classifier starts from). AGG mnn ignores it.
    keep_embeddings : bool
        Keep each class's (NORMpre-normalised) training embeddings, so that
        :meth:`partial_fit` can extend a class whose GEN needs all of them (k-means, k-medoids,
        random, covmax, fps) and ls/kls to solve again; ``mean`` and ``all`` extend exactly
        without them. Costs memory the size of the training data.

    Attributes
    ----------
    classes_ : ndarray of shape (C,)
        The labels, sorted after ``fit``; classes added by :meth:`partial_fit` follow in the
        order they were added (the order in which quantile NORMpost imprints them).
    proxies_ : ndarray of shape (P, d)
        The imprinted weights after NORMpost, grouped by class in the order of ``classes_``.
    raw_proxies_ : ndarray of shape (P, d)
        The same before NORMpost (what scoring rescales for NORMpost none and l2).
    proxy_position_ : ndarray of shape (P,)
        The position in ``classes_`` of each proxy's class.
    proxy_labels_ : ndarray of shape (P,)
        The class (a value of ``classes_``) of each proxy.
    class_counts_ : ndarray of shape (C,)
        Training embeddings imprinted per class.
    class_embeddings_ : list of ndarray or None
        Per class, its NORMpre-normalised training embeddings (``keep_embeddings=True``).
    seed_ : int
        The seed GEN used (from ``random_state``); classes added later are seeded from it.
    n_features_in_ : int
    """

    _parameter_constraints = {
        # the registry's live key view: a method registered later is accepted too
        "gen": [StrOptions(GEN_REGISTRY.keys())],
        "k": [Interval(numbers.Integral, 1, None, closed="left")],
        "norm_pre": [StrOptions(set(NORM_PRE))],
        "norm_post": [StrOptions(set(NORM_POST))],
        "norm_inf": [StrOptions(set(NORM_INF))],
        "agg": [StrOptions(set(AGG_METHODS))],
        "m": [Interval(numbers.Integral, 1, None, closed="left")],
        "ls_lambda": [Interval(numbers.Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
        "device": [StrOptions(set(DEVICES))],
        "dtype": [StrOptions(set(DTYPES))],
        "compat": [StrOptions(set(COMPAT_MODES))],
        "proba_scale": [Interval(numbers.Real, 0, None, closed="neither")],
        "keep_embeddings": ["boolean"],
    }

    def __init__(
        self,
        gen: str = "mean",
        k: int = 1,
        norm_pre: str = "l2",
        norm_post: str = "l2",
        norm_inf: str = "l2",
        agg: str = "max",
        m: int = 1,
        ls_lambda: float = 1e-4,
        random_state=None,
        device: str = "auto",
        dtype: str = "float32",
        compat: str = "none",
        proba_scale: float = 10.0,
        keep_embeddings: bool = True,
    ):
        self.gen = gen
        self.k = k
        self.norm_pre = norm_pre
        self.norm_post = norm_post
        self.norm_inf = norm_inf
        self.agg = agg
        self.m = m
        self.ls_lambda = ls_lambda
        self.random_state = random_state
        self.device = device
        self.dtype = dtype
        self.compat = compat
        self.proba_scale = proba_scale
        self.keep_embeddings = keep_embeddings

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Farthest-point and covariance-maximising selection pick extreme samples, and random
        # picks arbitrary ones: with small k they are weak classifiers by design (the paper's
        # finding; their registry entries say so). Quantile NORMpost keeps only the rank order
        # of a proxy's coordinates, which in scikit-learn's 2-feature check data is one bit. So
        # its "reasonable training score" check does not apply to these.
        weak = self.gen in GEN_REGISTRY and GEN_REGISTRY[self.gen].weak_by_design
        tags.classifier_tags.poor_score = weak or self.norm_post == "quantile"
        return tags

    def fit(self, X, y):
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_all_finite=True)
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        self.seed_ = resolve_seed(self.random_state)
        self._imprint(normalize_embeddings(X, self.norm_pre), encoded)
        return self

    def _imprint(self, train: np.ndarray, encoded: np.ndarray) -> None:
        """GEN and NORMpost of every class from NORMpre-normalised ``train``, labelled by
        position in ``classes_``."""
        proxies, proxy_position = generate_proxies(
            train,
            encoded,
            self.gen,
            self.k,
            self.ls_lambda,
            self.seed_,
            compat=self.compat,
            device=self.device,
        )
        self.class_counts_ = np.bincount(encoded, minlength=len(self.classes_))
        self.class_embeddings_ = (
            [train[encoded == position] for position in range(len(self.classes_))]
            if self.keep_embeddings
            else None
        )
        self.raw_proxies_ = proxies
        self.proxy_position_ = proxy_position
        self.proxies_ = normalize_proxies(proxies, proxy_position, self.norm_post)
        self.proxy_labels_ = self.classes_[proxy_position]

    def partial_fit(self, X, y, classes=None):
        """Add the classes of ``y`` that are new, or more examples to existing ones, without
        touching any other class's proxies (the first call on an unfitted classifier fits).

        A new class is imprinted from its samples as ``fit`` would imprint it at its position
        (appended after the existing classes). An existing class is extended exactly for GEN
        ``mean`` (the running mean over all its embeddings) and ``all`` (the new embeddings are
        appended); the other per-class methods imprint it again from all its embeddings, which
        needs ``keep_embeddings``. GEN ls and kls solve for all classes together: they solve
        again with every kept embedding, so every class's proxies change. Under quantile
        NORMpost, extending a class also changes the classes imprinted after it, since each is
        normalised against those before it.
        ``classes`` is accepted for scikit-learn's ``partial_fit`` protocol; the classes come
        from ``y``.
        """
        if not hasattr(self, "classes_"):
            return self.fit(X, y)
        X, y = validate_data(self, X, y, reset=False, dtype=np.float64, ensure_all_finite=True)
        check_classification_targets(y)
        train = normalize_embeddings(X, self.norm_pre)
        labels = np.unique(y)
        added = labels[~np.isin(labels, self.classes_)]
        extended = labels[np.isin(labels, self.classes_)]
        if not gen_method(self.gen).per_class:
            return self._refit_with(train, y)
        old_normalized = [
            self.proxies_[self.proxy_position_ == p] for p in range(len(self.classes_))
        ]
        blocks = [self.raw_proxies_[self.proxy_position_ == p] for p in range(len(self.classes_))]
        changed = set()
        for label in extended:
            position = int(np.flatnonzero(self.classes_ == label)[0])
            blocks[position] = self._extended_class(position, label, train[y == label])
            changed.add(position)
        for label in added:
            samples = train[y == label]
            changed.add(len(blocks))
            blocks.append(
                class_proxies(
                    samples,
                    self.gen,
                    self.k,
                    self.seed_,
                    len(blocks),
                    self.compat,
                    self.device,
                    earlier_counts=self.class_counts_.tolist(),
                )
            )
            self.classes_ = np.append(self.classes_, label)
            self.class_counts_ = np.append(self.class_counts_, len(samples))
            if self.class_embeddings_ is not None:
                self.class_embeddings_.append(samples)
        if self.norm_post == "quantile" and changed:
            # every class is normalised against those imprinted before it
            changed = set(range(min(changed), len(blocks)))
        normalized: list[np.ndarray] = []
        for position, raw in enumerate(blocks):
            normalized.append(
                self._normalized(raw, normalized)
                if position in changed
                else old_normalized[position]
            )
        self.raw_proxies_ = np.concatenate(blocks)
        self.proxy_position_ = np.concatenate(
            [np.full(len(block), position) for position, block in enumerate(blocks)]
        )
        self.proxies_ = np.concatenate(normalized)
        self.proxy_labels_ = self.classes_[self.proxy_position_]
        return self

    def _refit_with(self, train: np.ndarray, y: np.ndarray):
        """ls / kls: solved for all classes at once, so more data means solving again with
        every kept embedding (every class's proxies change)."""
        if self.class_embeddings_ is None:
            raise ValueError(
                f"GEN {self.gen!r} solves for all classes together, so adding data means solving "
                "again with every embedding, which this classifier did not keep (imprint fit "
                "--keep-embeddings); fit with all "
                f"data (classes can be added one by one with {', '.join(PER_CLASS_METHODS)})"
            )
        kept = {label: self.class_embeddings_[p] for p, label in enumerate(self.classes_)}
        for label in np.unique(y):
            new = train[y == label]
            kept[label] = np.concatenate([kept[label], new]) if label in kept else new
        order = [*self.classes_, *[label for label in np.unique(y) if label not in self.classes_]]
        self.classes_ = np.asarray(order, dtype=np.result_type(self.classes_, y))
        encoded = np.concatenate([np.full(len(kept[label]), p) for p, label in enumerate(order)])
        self._imprint(np.concatenate([kept[label] for label in order]), encoded)
        return self

    def _extended_class(self, position: int, label, samples: np.ndarray) -> np.ndarray:
        """The raw proxies of an existing class with ``samples`` added (see partial_fit)."""
        count = int(self.class_counts_[position])
        old = self.raw_proxies_[self.proxy_position_ == position]
        extend = gen_method(self.gen).extend
        if extend is not None:  # from the proxies alone (mean, all)
            proxies = extend(old, count, samples)
        elif self.class_embeddings_ is None:
            raise ValueError(
                f"GEN {self.gen!r} imprints class {str(label)!r} again from all its embeddings, "
                "which this classifier did not keep; fit with keep_embeddings=True "
                "(imprint fit --keep-embeddings)"
            )
        else:
            every = np.concatenate([self.class_embeddings_[position], samples])
            proxies = class_proxies(
                every,
                self.gen,
                self.k,
                self.seed_,
                position,
                self.compat,
                self.device,
                earlier_counts=self.class_counts_[:position].tolist(),
            )
        if self.class_embeddings_ is not None:
            self.class_embeddings_[position] = np.concatenate(
                [self.class_embeddings_[position], samples]
            )
        self.class_counts_[position] = count + len(samples)
        return proxies

    def _normalized(self, raw: np.ndarray, earlier: list[np.ndarray]) -> np.ndarray:
        """NORMpost of one class's proxies, given the (normalised) proxies of the classes
        imprinted before it (all of ``earlier``)."""
        if self.norm_post == "l2":
            return l2_normalize(raw)
        if self.norm_post == "quantile" and earlier:
            return quantile_map(raw, np.concatenate(earlier))
        return raw

    def predict(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite=True)
        variant = (self.agg, self.m)
        proxy_norm = self.norm_post if self.norm_post in SCALINGS else "none"
        scored = self.raw_proxies_ if self.norm_post in SCALINGS else self.proxies_
        test = TestEmbeddings(X, device=self.device, dtype=self.dtype)
        found = predict_all(
            test,
            scored,
            self.proxy_position_,
            len(self.classes_),
            [variant],
            [proxy_norm],
            [self.norm_inf],
        )
        return self.classes_[found[(proxy_norm, self.norm_inf, *variant)].cpu().numpy()]

    def head_tensors(self) -> dict[str, np.ndarray]:
        """What :func:`imprint.agg.class_scores` scores with, as arrays: the proxies it takes
        the product with, their NORMpost scale, the per-class proxy index and one-hot map."""
        check_is_fitted(self)
        rescaled = self.norm_post in SCALINGS
        proxies = self.raw_proxies_ if rescaled else self.proxies_
        if self.norm_post == "l2":
            norms = np.linalg.norm(proxies, axis=1)
            scale = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 1.0)
        else:
            scale = np.ones(len(proxies))
        n_classes = len(self.classes_)
        return {
            "proxies": proxies,
            "proxy_scale": scale,
            "index": class_index(self.proxy_position_, n_classes),
            "proxy_onehot": np.eye(n_classes)[self.proxy_position_],
        }

    def class_scores(self, X) -> np.ndarray:
        """Per-class scores ``[n, C]`` in the order of ``classes_``: for AGG max a class's best
        inner product (cosine similarity with L2 NORMpost and NORMinf), for AGG mnn its
        1/distance-weighted votes (see :func:`imprint.agg.class_scores`). Their argmax is
        ``predict`` (up to rounding ties). Computed in float64."""
        import torch

        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite=True)
        # float64 whatever ``dtype``: float32 products differ in the last bits with the batch's
        # shape (BLAS blocking), and scores must not depend on which rows came with a sample.
        device, dtype = resolve_device(self.device), torch.float64
        head = {
            name: torch.as_tensor(array, device=device).to(
                torch.int64 if name == "index" else dtype
            )
            for name, array in self.head_tensors().items()
        }
        # elements per row of the largest temporary: the padded [C, K] gather for max, the
        # m nearest proxies and their one-hot classes for mnn
        width = (
            head["index"].numel()
            if self.agg == "max"
            else self.m * (len(self.classes_) + self.n_features_in_)
        )
        rows = max(1, CPU_CHUNK_ELEMENTS // max(width, len(head["proxies"]), 1))
        x = torch.as_tensor(X, device=device).to(dtype)
        scores = [
            class_scores(
                x[start : start + rows], **head, agg=self.agg, m=self.m, norm_inf=self.norm_inf
            )
            for start in range(0, len(x), rows)
        ]
        if not scores:
            return np.empty((0, len(self.classes_)))
        return torch.cat(scores).cpu().numpy().astype(np.float64)

    def decision_function(self, X) -> np.ndarray:
        """:meth:`class_scores`; for two classes, as scikit-learn expects, one score per
        sample, positive where the second class wins: the score difference for AGG max, the
        vote difference over the vote total (in [-1, 1]) for AGG mnn."""
        scores = self.class_scores(X)
        if len(self.classes_) != 2:
            return scores
        margin = scores[:, 1] - scores[:, 0]
        return margin if self.agg == "max" else margin / scores.sum(axis=1)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, a monotone transform of :meth:`class_scores` per sample: for
        AGG max ``softmax(proba_scale * scores)``, for AGG mnn each class's share of the vote
        weight. Their argmax is ``predict`` (up to rounding ties)."""
        scores = self.class_scores(X)
        if self.agg == "mnn":
            return scores / scores.sum(axis=1, keepdims=True)
        return scipy.special.softmax(self.proba_scale * scores, axis=1)
