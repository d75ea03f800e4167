"""GEN: proxy generation, one or more weight vectors ("proxies") per class.

Every GEN method is one entry of :data:`GEN_REGISTRY`, registered with :func:`register_gen` on
the function that makes its proxies. The entry says what the grid, the classifier, the config
and the figures need to know (does it take ``k``, does it work class by class, what work it
shares across k, how it runs with ``compat="paper"``, what it imports), and every name list
(:data:`GEN_METHODS`, :data:`K_METHODS`, :data:`SHARED_ACROSS_K`, :data:`PER_CLASS_METHODS`,
...) is derived from the registry. Adding a method is one function and its decorator (see the
README's "Where a new method, figure or source goes").

All methods work class by class in ascending label order; a class's randomness comes from a seed
derived from ``(random_state, class position)`` so that it does not depend on the other classes
(except with ``compat="paper"``, which draws as the IMPRINT authors' code does: see
:func:`generate_proxies`).
Methods that take ``k`` clip it to the class size: a class with at most ``k`` samples keeps all its
samples as proxies (for ``kls``: every sample becomes its own pseudo-class).
k-medoids' algorithms live in :mod:`imprint.medoids`, k-means' in :mod:`imprint.kmeans`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.linalg

# scikit-learn and kmedoids are imported where they are used: importing them takes about a
# second, which every statistics and figure job would pay only for GEN_METHODS. Whoever times
# GEN calls import_backends() first.

#: ``imprinting.compat``: ``paper`` runs k-means, k-medoids, random and FPS as the IMPRINT
#: authors' code does (:func:`generate_proxies`).
COMPAT_MODES = ("none", "paper")


def class_seed(random_state: int, class_position: int) -> int:
    """Seed of one class's random choices, independent of every other class."""
    return int(np.random.SeedSequence([random_state, class_position]).generate_state(1)[0])


def gen_seed(random_state: int, class_position: int, compat: str = "none") -> int:
    """The seed a class's GEN uses: :func:`class_seed`, or with ``compat="paper"`` the job's seed
    itself for every class, as the IMPRINT authors' code seeds k-means and k-medoids."""
    return random_state if compat == "paper" else class_seed(random_state, class_position)


@dataclass(frozen=True)
class KMeansSplit:
    """k-means of one class: the centres and, per sample, the index of its centre."""

    centers: np.ndarray
    assignment: np.ndarray


def kmeans_split(
    x: np.ndarray, k: int, seed: int, compat: str = "none", device: str = "cpu"
) -> KMeansSplit:
    """Seeded k-means of one class (k clipped to the class size).

    By default :func:`imprint.kmeans.kmeans` on ``device``: scikit-learn's ``KMeans`` algorithm
    and random draws in PyTorch, float64. With ``compat="paper"`` scikit-learn's ``KMeans`` on
    float32 embeddings, as the IMPRINT authors ran it. With fewer distinct points than ``k``
    either returns duplicate centres (scikit-learn also a warning, silenced): the duplicates are
    kept, so a class always has ``min(k, n)`` centres.
    """
    n = len(x)
    if n <= k:
        return KMeansSplit(centers=x.copy(), assignment=np.arange(n))
    if compat != "paper":
        from imprint.kmeans import kmeans

        found = kmeans(x, k, seed, device=device)
        return KMeansSplit(centers=found.centers.astype(x.dtype), assignment=found.labels)
    with warnings.catch_warnings():
        from sklearn.cluster import KMeans
        from sklearn.exceptions import ConvergenceWarning

        warnings.simplefilter("ignore", ConvergenceWarning)
        model = KMeans(n_clusters=k, random_state=seed, n_init="auto").fit(x.astype(np.float32))
    return KMeansSplit(centers=model.cluster_centers_.astype(x.dtype), assignment=model.labels_)


@dataclass
class GenCache:
    """Work that GEN calls on the same (normalised) embeddings share.

    :meth:`prepare` runs a method's shared work (its entry's ``prepare``) for every class and
    every k of ``k_values`` at once; :func:`generate_proxies` then reads it. k-means: one
    clustering per (class, k), used by kmeans and kls. k-medoids: the dissimilarity matrix once
    per class, BUILD once at the largest k (BUILD is greedy, so the BUILD medoids for k are the
    first k of those for the largest k) and each k's FasterPAM swap phase from that prefix. FPS:
    greedy from a start that does not depend on k, so its k points are the first k of the
    largest k's; covmax: one ranking of a class's samples, whose first k are its k points. Least
    squares: the Gram matrix is factorised once for ls and every k of kls. k-means and FPS run
    on ``device``.
    """

    k_values: tuple[int, ...] = ()
    compat: str = "none"
    #: where k-means and farthest-point sampling run (``imprinting.device``)
    device: str = "cpu"
    kmeans: dict[tuple[int, int], KMeansSplit] = field(default_factory=dict)
    #: (gen, class position, k) -> indices of the class's samples that become proxies
    selected: dict[tuple[str, int, int], np.ndarray] = field(default_factory=dict)
    gram_factor: Any = None

    def prepare(
        self, x: np.ndarray, y: np.ndarray, gen: str, random_state: int
    ) -> dict[int, float]:
        """Run the shared work of ``gen`` (kmeans/kls, kmedoids, fps, covmax) for every class and k;
        returns, per k, the seconds of that work a run for k alone would have needed."""
        seconds = dict.fromkeys(self.k_values, 0.0)
        shared = gen_method(gen).shared_work
        if shared is None:
            return seconds
        method = GEN_REGISTRY[shared]
        if self.compat == "paper" and method.paper_sequential:
            return seconds  # drawn class after class from one generator (paper_draw)
        for position, label in enumerate(np.unique(y)):
            for k, elapsed in method.prepare(self, x[y == label], random_state, position).items():
                seconds[k] += elapsed
        return seconds


@dataclass(frozen=True)
class GenContext:
    """What a GEN method's function gets besides the embeddings and k: the job's seed, the
    compatibility mode, the device, the shared-work cache and the least-squares λ."""

    random_state: int = 0
    compat: str = "none"
    device: str = "cpu"
    cache: GenCache | None = None
    ls_lambda: float = 1e-4

    def class_seed(self, position: int) -> int:
        return class_seed(self.random_state, position)


#: How a method's function makes proxies: ``select`` returns the indices of the class's samples
#: that become proxies (called only when the class has more than k samples), ``construct``
#: returns new vectors for one class, ``joint`` solves for all classes at once.
GenKind = Literal["select", "construct", "joint"]
#: select / construct: ``(samples, k, context, position) -> indices or proxies``;
#: joint: ``(x, y, k, context) -> (proxies, proxy labels)``
ProxyFunction = Callable[..., Any]
#: ``(cache, samples, random_state, position) -> {k: seconds}``: one class's work shared across
#: the cache's k values, stored in the cache (a :class:`GenCache`) for the method's function to
#: read. (Not typed with GenCache: a job that reads only the registry's names must not reach the
#: code GenCache dispatches to, by imprint.codehash.)
PrepareFunction = Callable[..., dict[int, float]]


@dataclass(frozen=True)
class GenMethod:
    """One GEN method and what the rest of the library needs to know about it."""

    name: str
    kind: GenKind
    proxies: ProxyFunction
    #: the number of proxies per class is set by ``k`` (others ignore it)
    uses_k: bool = False
    #: work shared across k for one class (:meth:`GenCache.prepare`)
    prepare: PrepareFunction | None = None
    #: reads another method's shared work (kls reads kmeans' clusterings)
    shares_work_of: str | None = None
    #: with ``compat="paper"``, draws from one torch generator shared by the classes in label
    #: order (:func:`paper_draw`), as the authors' code draws from torch's global generator
    paper_sequential: bool = False
    #: modules it imports, imported before GEN is timed (:func:`import_backends`); and those it
    #: imports only with ``compat="paper"``
    imports: tuple[str, ...] = ()
    paper_imports: tuple[str, ...] = ()
    #: picks extreme or arbitrary samples, so with small k a weak classifier by design (the
    #: paper's finding): scikit-learn's "reasonable training score" check does not apply
    weak_by_design: bool = False
    #: another implementation of the named method (kept out of the default selection grid)
    variant_of: str | None = None
    #: how the classifier extends a class with more samples from its proxies alone, without
    #: its embeddings: ``(proxies, count, samples) -> proxies``; None: imprint it again
    extend: Callable[[np.ndarray, int, np.ndarray], np.ndarray] | None = None

    @property
    def per_class(self) -> bool:
        """Imprints each class from its own samples alone, so a class can be added or extended
        without touching the others."""
        return self.kind != "joint"

    @property
    def shared_work(self) -> str | None:
        """The method whose :meth:`GenCache.prepare` work this one reads, if any."""
        if self.shares_work_of is not None:
            return self.shares_work_of
        return self.name if self.prepare is not None else None


#: Every GEN method by name, in the order tables and figures list them.
GEN_REGISTRY: dict[str, GenMethod] = {}


def register_gen(name: str, kind: GenKind, **properties: Any) -> Callable:
    """Decorator: register the decorated function as GEN method ``name`` (``properties`` are
    :class:`GenMethod`'s fields)."""

    def decorate(function: ProxyFunction) -> ProxyFunction:
        if name in GEN_REGISTRY:
            raise ValueError(f"GEN method {name!r} is registered twice")
        GEN_REGISTRY[name] = GenMethod(name=name, kind=kind, proxies=function, **properties)
        return function

    return decorate


def gen_method(name: str) -> GenMethod:
    """The registry entry of ``name``, or a ValueError that lists the methods."""
    try:
        return GEN_REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown GEN method {name!r}; expected one of {tuple(GEN_REGISTRY)}"
        ) from None


def import_backends(gen_methods: Sequence[str] | None = None, compat: str = "none") -> None:
    """Import the libraries these GEN methods (default: all) use now, so that GEN timings do not
    include their import; only theirs: scikit-learn alone takes 1-2 s, which a grid without them
    (or a job of a few milliseconds' work) need not pay."""
    import importlib

    for name in GEN_REGISTRY if gen_methods is None else gen_methods:
        method = GEN_REGISTRY[name]
        for module in method.imports + (method.paper_imports if compat == "paper" else ()):
            importlib.import_module(module)


def covariance_scores(x: np.ndarray) -> np.ndarray:
    """Column sums of the sample-by-sample covariance matrix (``torch.cov(x)`` in IMPRINT).

    Each sample is treated as a variable observed over the d embedding dimensions; the score of a
    sample is the sum of its covariances with all samples of the class. Computed without forming
    the n×n matrix.
    """
    centered = x - x.mean(axis=1, keepdims=True)
    return centered @ centered.sum(axis=0) / max(x.shape[1] - 1, 1)


def covmax_order(x: np.ndarray) -> np.ndarray:
    """Sample indices by descending :func:`covariance_scores`, ties in sample order: covmax's
    k proxies are the first k."""
    return np.argsort(-covariance_scores(x), kind="stable")


def farthest_point_sampling(
    x: np.ndarray, k: int, rng: np.random.Generator, device: str = "cpu"
) -> np.ndarray:
    """Indices of k samples chosen greedily, each farthest (Euclidean) from those already chosen.

    Written by hand: neither scikit-learn nor SciPy offers it, and the greedy loop is a few lines.
    Starts from a uniformly random sample (drawn on the CPU, so the same on every device). Runs
    in PyTorch on ``device``, in float64; distances as ‖x − c‖ of the difference, not from inner
    products, whose cancellation would reorder near ties.
    """
    import torch

    from imprint.devices import resolve_device

    data = torch.as_tensor(np.asarray(x, dtype=np.float64), device=resolve_device(device))
    first = int(rng.integers(len(x)))
    chosen = torch.empty(k, dtype=torch.int64, device=data.device)
    chosen[0] = first
    nearest = torch.linalg.vector_norm(data - data[first], dim=1)
    # The loop stays on the device (no per-step copy to the host): argmax is the first largest.
    for step in range(1, k):
        chosen[step] = torch.argmax(nearest)
        torch.minimum(
            nearest, torch.linalg.vector_norm(data - data[chosen[step]], dim=1), out=nearest
        )
    return chosen.cpu().numpy()


def paper_generator(seed: int) -> Any:
    """A torch CPU generator in the state ``torch.manual_seed(seed)`` leaves the global one in
    (same Mersenne Twister stream), so that compat-paper draws do not touch global state."""
    import torch

    return torch.Generator().manual_seed(seed)


def paper_draw(
    samples: np.ndarray, gen: str, k: int, generator: Any, replay: bool = False
) -> np.ndarray:
    """Indices of one class's random or FPS proxies as the IMPRINT authors' ``select_proxies``
    chooses them, drawing from ``generator`` (shared by the classes in label order):

    - fewer than k samples, or one: every sample, and nothing is drawn;
    - random: ``torch.randperm(n)[:k]``, in that order;
    - fps: the start ``torch.randint(n, (1,))``, then their greedy loop (float32 ``torch.cdist``
      to the chosen set, remaining indices in the order of their ``set`` difference), so that
      near ties break as theirs do.

    ``replay=True`` only advances ``generator`` past the class's draw (``samples`` need just
    their number of rows): what the classes before an added class drew.
    """
    import torch

    n = len(samples)
    if n < k or n == 1:
        return np.arange(n)
    if gen == "random":
        return torch.randperm(n, generator=generator)[:k].numpy()
    if gen != "fps":
        raise ValueError(f"compat 'paper' draws for random and fps only, not {gen!r}")
    start = int(torch.randint(n, (1,), generator=generator).item())
    if replay:
        return np.empty(0, dtype=np.int64)
    # Transcribed from their farthest_point_sampling rather than reusing ours: its float32
    # distances and the iteration order of a Python set decide near ties there.
    data = torch.as_tensor(np.asarray(samples, dtype=np.float32))
    selected = [start]
    for _ in range(1, k):
        remaining = list(set(range(n)) - set(selected))
        distances = torch.cdist(data[remaining], data[selected]).min(dim=1).values
        selected.append(remaining[int(distances.argmax())])
    return np.asarray(selected, dtype=np.int64)


def least_squares_proxies(
    x: np.ndarray, groups: np.ndarray, ls_lambda: float, gram_factor: Any = None
) -> np.ndarray:
    """Closed-form least-squares classifier weights, one row per group (class or pseudo-class).

    ``W = (1/G) Mᵀ (XᵀX/N + λI)⁻¹`` with M the group means and G the number of groups, i.e. the
    ridge regression ``min_W (1/N)‖X Wᵀ − Y‖² + λ‖W‖²`` of one-hot targets Y in which every group
    counts equally (exact for balanced groups), as derived for IMPRINT (arXiv:2503.06385).
    Written out rather than with ``sklearn.linear_model.Ridge``, which weights groups by size.
    The Gram matrix does not depend on the groups: ``gram_factor`` (from :func:`gram_factor`)
    lets ls and every k of kls share one Cholesky factorisation.
    """
    group_ids = np.unique(groups)
    means = np.stack([x[groups == g].mean(axis=0) for g in group_ids])
    factor = gram_factor if gram_factor is not None else least_squares_factor(x, ls_lambda)
    return scipy.linalg.cho_solve(factor, means.T).T / len(group_ids)


def least_squares_factor(x: np.ndarray, ls_lambda: float) -> Any:
    """Cholesky factorisation of ``XᵀX/N + λI`` (symmetric positive definite for λ > 0)."""
    n, d = x.shape
    gram = x.T @ x / n + ls_lambda * np.eye(d, dtype=x.dtype)
    return scipy.linalg.cho_factor(gram)


def _gram_factor(x: np.ndarray, context: GenContext) -> Any:
    """The least-squares factorisation of ``x``, from the cache when it holds it (and stored
    there when it did not)."""
    cache = context.cache
    factor = cache.gram_factor if cache is not None else None
    if factor is None:
        factor = least_squares_factor(x, context.ls_lambda)
        if cache is not None:
            cache.gram_factor = factor
    return factor


def _kmeans_of_class(
    samples: np.ndarray, k: int, context: GenContext, position: int
) -> KMeansSplit:
    """One class's k-means, from the cache when it holds it (and stored there when it did not)."""
    key = (position, k)
    cache = context.cache
    if cache is not None and key in cache.kmeans:
        return cache.kmeans[key]
    seed = gen_seed(context.random_state, position, context.compat)
    result = kmeans_split(samples, k, seed, context.compat, context.device)
    if cache is not None:
        cache.kmeans[key] = result
    return result


# --- Shared work across k (GenCache.prepare) --------------------------------------------------


def _prepare_kmeans(
    cache: GenCache, samples: np.ndarray, random_state: int, position: int
) -> dict[int, float]:
    """One k-means per k (kmeans and kls read them)."""
    seed = gen_seed(random_state, position, cache.compat)
    seconds = {}
    for k in cache.k_values:
        start = time.perf_counter()
        cache.kmeans[(position, k)] = kmeans_split(samples, k, seed, cache.compat, cache.device)
        seconds[k] = time.perf_counter() - start
    return seconds


def _prepare_kmedoids(
    cache: GenCache, samples: np.ndarray, random_state: int, position: int
) -> dict[int, float]:
    """FasterPAM for every k from one dissimilarity matrix and one BUILD; with compat paper the
    authors' alternating k-medoids for every k from one distance matrix."""
    from imprint.medoids import alternating_for_each_k, kmedoids_for_each_k

    seconds = {}
    if cache.compat == "paper":
        for k, (chosen, elapsed) in alternating_for_each_k(samples, cache.k_values).items():
            cache.selected[("kmedoids", position, k)] = chosen
            seconds[k] = elapsed
        return seconds
    found, setup, swaps = kmedoids_for_each_k(
        samples, cache.k_values, class_seed(random_state, position)
    )
    for k, chosen in found.items():
        cache.selected[("kmedoids", position, k)] = chosen
        seconds[k] = setup + swaps.get(k, 0.0)
    return seconds


def _greedy_order_preparer(name: str, order: Callable) -> PrepareFunction:
    """Shared work of a greedy selection (fps, covmax): each k's points are the first k of one
    order per class, ``order(cache, samples, largest k below the class size, seed)``."""

    def prepare(
        cache: GenCache, samples: np.ndarray, random_state: int, position: int
    ) -> dict[int, float]:
        start = time.perf_counter()
        n = len(samples)
        largest = max([k for k in cache.k_values if k < n], default=0)
        ranking = order(cache, samples, largest, class_seed(random_state, position))
        for k in cache.k_values:
            cache.selected[(name, position, k)] = ranking[:k] if k < n else np.arange(n)
        return dict.fromkeys(cache.k_values, time.perf_counter() - start)

    return prepare


def _fps_order(cache: GenCache, samples: np.ndarray, largest: int, seed: int) -> Any:
    if not largest:
        return None  # every k keeps all samples
    return farthest_point_sampling(samples, largest, np.random.default_rng(seed), cache.device)


def _covmax_order(cache: GenCache, samples: np.ndarray, largest: int, seed: int) -> np.ndarray:
    return covmax_order(samples)


# --- The methods, in the order tables and figures list them ------------------------------------


def _extend_all(proxies: np.ndarray, count: int, samples: np.ndarray) -> np.ndarray:
    """Every sample: the old ones and the new."""
    return np.concatenate([proxies, samples])


@register_gen("all", "select", extend=_extend_all)
def _select_all(samples: np.ndarray, k: int, context: GenContext, position: int) -> np.ndarray:
    """Every sample."""
    return np.arange(len(samples))


@register_gen("random", "select", uses_k=True, paper_sequential=True, weak_by_design=True)
def _select_random(samples: np.ndarray, k: int, context: GenContext, position: int) -> np.ndarray:
    """k samples drawn without replacement."""
    rng = np.random.default_rng(context.class_seed(position))
    return np.sort(rng.choice(len(samples), size=k, replace=False))


def _extend_mean(proxies: np.ndarray, count: int, samples: np.ndarray) -> np.ndarray:
    """The mean of ``count`` samples and ``samples``, from the first mean."""
    return (proxies * count + samples.sum(axis=0, keepdims=True)) / (count + len(samples))


@register_gen("mean", "construct", extend=_extend_mean)
def _mean(samples: np.ndarray, k: int, context: GenContext, position: int) -> np.ndarray:
    """The class mean (Qi et al.'s imprinting)."""
    return samples.mean(axis=0, keepdims=True)


@register_gen(
    "kmeans",
    "construct",
    uses_k=True,
    prepare=_prepare_kmeans,
    paper_imports=("sklearn.cluster",),
)
def _kmeans_centres(samples: np.ndarray, k: int, context: GenContext, position: int) -> Any:
    """The centres of a seeded k-means (:func:`kmeans_split`)."""
    return _kmeans_of_class(samples, k, context, position).centers


@register_gen(
    "kmedoids",
    "select",
    uses_k=True,
    prepare=_prepare_kmedoids,
    imports=("kmedoids", "sklearn.metrics"),
)
def _select_kmedoids(samples: np.ndarray, k: int, context: GenContext, position: int) -> Any:
    """FasterPAM medoids (BUILD initialisation, :func:`imprint.medoids.kmedoids_for_each_k`);
    with compat paper the authors' alternating k-medoids."""
    from imprint.medoids import alternating_kmedoids, kmedoids_for_each_k

    if context.compat == "paper":
        return alternating_kmedoids(samples, k)
    return kmedoids_for_each_k(samples, [k], context.class_seed(position))[0][k]


@register_gen("kmedoids_alternate", "select", uses_k=True, variant_of="kmedoids")
def _select_alternating_kmedoids(
    samples: np.ndarray, k: int, context: GenContext, position: int
) -> np.ndarray:
    """The alternating k-medoids of the authors' code
    (:func:`imprint.medoids.alternating_kmedoids`)."""
    from imprint.medoids import alternating_kmedoids

    return alternating_kmedoids(samples, k)


_prepare_covmax = _greedy_order_preparer("covmax", _covmax_order)
_prepare_fps = _greedy_order_preparer("fps", _fps_order)


@register_gen("covmax", "select", uses_k=True, prepare=_prepare_covmax, weak_by_design=True)
def _select_covmax(samples: np.ndarray, k: int, context: GenContext, position: int) -> Any:
    """The k samples with the largest :func:`covariance_scores`."""
    return covmax_order(samples)[:k]


@register_gen(
    "fps", "select", uses_k=True, prepare=_prepare_fps, paper_sequential=True, weak_by_design=True
)
def _select_fps(samples: np.ndarray, k: int, context: GenContext, position: int) -> np.ndarray:
    """:func:`farthest_point_sampling` from a random start."""
    rng = np.random.default_rng(context.class_seed(position))
    return farthest_point_sampling(samples, k, rng, context.device)


@register_gen("ls", "joint")
def _least_squares(x: np.ndarray, y: np.ndarray, k: int, context: GenContext) -> Any:
    """:func:`least_squares_proxies` over the classes (one proxy per class)."""
    factor = _gram_factor(x, context)
    return least_squares_proxies(x, y, context.ls_lambda, factor), np.unique(y)


@register_gen(
    "kls",
    "joint",
    uses_k=True,
    shares_work_of="kmeans",
    paper_imports=("sklearn.cluster",),
)
def _k_least_squares(x: np.ndarray, y: np.ndarray, k: int, context: GenContext) -> Any:
    """k-means splits every class into k pseudo-classes, then least squares over all of them;
    each proxy keeps its parent class's label."""
    factor = _gram_factor(x, context)
    classes = np.unique(y)
    pseudo_class = np.empty(len(y), dtype=np.int64)
    parent_labels = []
    for position, label in enumerate(classes):
        idx = np.flatnonzero(y == label)
        split = _kmeans_of_class(x[idx], k, context, position)
        # Empty clusters (only possible with duplicate points) get no pseudo-class.
        _, dense = np.unique(split.assignment, return_inverse=True)
        pseudo_class[idx] = len(parent_labels) + dense
        parent_labels.extend([classes[position]] * (dense.max() + 1))
    proxies = least_squares_proxies(x, pseudo_class, context.ls_lambda, factor)
    return proxies, np.asarray(parent_labels)


# --- Lists derived from the registry ------------------------------------------------------------

GEN_METHODS = tuple(GEN_REGISTRY)
#: GEN methods whose number of proxies per class is set by ``k``; the others ignore it.
K_METHODS = frozenset(name for name, method in GEN_REGISTRY.items() if method.uses_k)
#: GEN methods with work that :meth:`GenCache.prepare` shares across k.
SHARED_ACROSS_K = frozenset(
    name for name, method in GEN_REGISTRY.items() if method.shared_work is not None
)
#: GEN methods that, with ``compat="paper"``, draw from one torch generator seeded once per
#: configuration and shared by the classes in label order (:func:`paper_draw`).
PAPER_SEQUENTIAL_DRAWS = frozenset(
    name for name, method in GEN_REGISTRY.items() if method.paper_sequential
)
#: GEN methods that imprint each class from its own samples alone (ls and kls solve for all
#: classes at once): with these a class can be added or extended without touching the others.
PER_CLASS_METHODS = tuple(name for name, method in GEN_REGISTRY.items() if method.per_class)


def generate_proxies(
    x: np.ndarray,
    y: np.ndarray,
    gen: str,
    k: int = 1,
    ls_lambda: float = 1e-4,
    random_state: int = 0,
    cache: GenCache | None = None,
    compat: str = "none",
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Proxies ``[P, d]`` and their labels ``[P]`` (values of ``y``), in ascending label order.

    ``gen`` is one of :data:`GEN_METHODS` (each documented on its function in this module):

    - ``all``: every sample; ``random``: k samples drawn without replacement; ``mean``: the mean;
    - ``kmeans``: the centres of a seeded k-means (:func:`kmeans_split`); ``kmedoids``:
      FasterPAM medoids (BUILD initialisation, from the ``kmedoids`` package, see
      :func:`imprint.medoids.kmedoids_for_each_k`);
      ``kmedoids_alternate``: the alternating k-medoids of the authors' code
      (:func:`imprint.medoids.alternating_kmedoids`);
    - ``covmax``: the k samples with the largest :func:`covariance_scores`;
    - ``fps``: :func:`farthest_point_sampling` from a random start;
    - ``ls``: :func:`least_squares_proxies` over the classes (one proxy per class);
    - ``kls``: k-means splits every class into k pseudo-classes, then least squares over all of
      them; each proxy keeps its parent class's label.

    ``cache`` (a :class:`GenCache`) shares work between calls on the same ``x``: the k-means
    of a (class, k) between ``kmeans`` and ``kls``, k-medoids, FPS and covmax for all k of a
    class, the least-squares factorisation. The proxies are the same with or without it.

    ``device`` (``cpu``, ``cuda`` or ``auto``): where k-means and FPS run; the proxies are the
    same on every device up to floating-point ties.

    ``compat="paper"``: k-means (for kmeans and kls) and k-medoids as the IMPRINT authors' code
    runs them: scikit-learn's ``KMeans(n_clusters=k, random_state=seed)`` on float32 with the
    same seed for every class, ``kmedoids`` as ``kmedoids_alternate``, and ``random`` and
    ``fps`` from one torch generator seeded with ``random_state`` and drawn class after class
    (:func:`paper_draw`). Other methods are unchanged.
    """
    if compat not in COMPAT_MODES:
        raise ValueError(f"unknown compat mode {compat!r}; expected one of {COMPAT_MODES}")
    if cache is not None and cache.compat != compat:
        raise ValueError(f"the cache was prepared for compat {cache.compat!r}, not {compat!r}")
    if cache is not None and cache.device != device:
        raise ValueError(f"the cache was prepared on device {cache.device!r}, not {device!r}")
    method = gen_method(gen)
    if method.uses_k and k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    context = GenContext(random_state, compat, device, cache, ls_lambda)
    if method.kind == "joint":
        return method.proxies(x, y, k, context)
    classes = np.unique(y)
    members = [np.flatnonzero(y == label) for label in classes]
    if compat == "paper" and method.paper_sequential:
        generator = paper_generator(random_state)
        blocks = [x[idx][paper_draw(x[idx], gen, k, generator)] for idx in members]
    else:
        blocks = [
            _one_class(method, x[idx], k, context, position) for position, idx in enumerate(members)
        ]
    labels = np.concatenate([np.full(len(b), c) for b, c in zip(blocks, classes, strict=True)])
    return np.concatenate(blocks), labels


def _one_class(
    method: GenMethod, samples: np.ndarray, k: int, context: GenContext, position: int
) -> np.ndarray:
    """The proxies of one class by a per-class method: a construct method's vectors, or the
    samples a select method picks (all of them when the class has at most k; from the cache
    when it holds them)."""
    if method.kind == "construct":
        return method.proxies(samples, k, context, position)
    cache = context.cache
    if cache is not None and (method.name, position, k) in cache.selected:
        return samples[cache.selected[(method.name, position, k)]]
    if len(samples) <= k:
        return samples[np.arange(len(samples))]
    return samples[method.proxies(samples, k, context, position)]


def class_proxies(
    samples: np.ndarray,
    gen: str,
    k: int,
    random_state: int,
    position: int,
    compat: str = "none",
    device: str = "cpu",
    cache: GenCache | None = None,
    earlier_counts: Sequence[int] = (),
) -> np.ndarray:
    """The proxies of one class from its own ``samples`` (``gen`` one of
    :data:`PER_CLASS_METHODS`), seeded as :func:`generate_proxies` seeds the class at
    ``position`` in label order: what adding a class to a fitted classifier imprints.

    With ``compat="paper"``, random and FPS draw after the classes before it
    (:data:`PAPER_SEQUENTIAL_DRAWS`): ``earlier_counts``, the sizes of the ``position`` classes
    before it, replay their draws first."""
    method = gen_method(gen)
    if not method.per_class:
        per_class = tuple(name for name, entry in GEN_REGISTRY.items() if entry.per_class)
        raise ValueError(f"GEN {gen!r} imprints all classes together; per class: {per_class}")
    if compat == "paper" and method.paper_sequential:
        if len(earlier_counts) != position:
            raise ValueError(
                f"compat 'paper' {gen} draws after the classes before position {position}: "
                f"their sizes are needed (got {len(earlier_counts)})"
            )
        generator = paper_generator(random_state)
        for count in earlier_counts:
            paper_draw(np.empty((count, 0)), gen, k, generator, replay=True)
        return samples[paper_draw(samples, gen, k, generator)]
    context = GenContext(random_state, compat, device, cache)
    return _one_class(method, samples, k, context, position)
