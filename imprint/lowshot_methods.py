"""Qi et al.'s low-shot methods (imprint.lowshot runs them), one registered function each.

A method is a function of one n's :class:`imprint.lowshot.Shots` (the seed's run, the novel
examples, their imprinted weights, the method's own generator and a draw of random novel
weights from it) and its own name, returning its rows; ``@register_method(label, seed_key)``
enters it in :data:`METHODS` under the function's name, in table and figure order. The
``seed_key`` keys the method's generator and is fixed for good: a method's draws never depend on
which methods run or in which order. A new method is one function here with its decorator.

Nothing of the package is imported at this module's top level: the figure and summary jobs read
:data:`METHODS`' names and labels without depending on the code the methods run
(imprint.codehash); the low-shot job imports all of it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

#: An :class:`imprint.lowshot.Shots` (not imported: imprint.lowshot imports this module).
Shots = Any
Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class LowShotMethod:
    """One low-shot method: ``run(shots, name)`` gives its rows for one n."""

    label: str  # Qi et al.'s name, for tables and figures
    seed_key: int
    run: Callable[[Shots, str], Rows]
    trains: bool = False  # evaluated after every epoch (its rows carry an ``epoch``)
    #: run when the config names no methods (those of Qi et al.'s Tables 1-2)
    default: bool = True


#: Every low-shot method by name, in table and figure order (filled by :func:`register_method`).
METHODS: dict[str, LowShotMethod] = {}


def register_method(label: str, seed_key: int, *, trains: bool = False, default: bool = True):
    """Enter the decorated function in :data:`METHODS` under its name, with Qi et al.'s
    ``label`` and a ``seed_key`` no other method has."""

    def register(run: Callable[[Shots, str], Rows]) -> Callable[[Shots, str], Rows]:
        taken = {method.seed_key: name for name, method in METHODS.items()}
        if run.__name__ in METHODS or seed_key in taken:
            raise ValueError(
                f"low-shot method {run.__name__!r} (seed_key {seed_key}): the name or the "
                f"seed key is taken ({taken})"
            )
        METHODS[run.__name__] = LowShotMethod(label, seed_key, run, trains, default)
        return run

    return register


@register_method("Rand-noFT", 1)
def rand_noft(shots: Shots, name: str) -> Rows:
    """Random novel weights, no training."""
    run = shots.run
    return shots.evaluated(name, run.network, run.extended(shots.random_novel, shots.proxy_class))


@register_method("Imprinting", 2)
def imprint(shots: Shots, name: str) -> Rows:
    """Each novel class's weight the normalised mean of its examples' normalised embeddings (or
    its k-means proxies, ``init_gen="kmeans"``)."""
    run = shots.run
    return shots.evaluated(name, run.network, run.extended(shots.weights, shots.proxy_class))


@register_method("Imprinting+Aug", 3)
def imprint_aug(shots: Shots, name: str) -> Rows:
    """Imprinting from each example's embedding averaged over ``copies`` augmentations."""
    run = shots.run
    averaged = run.features.augmented(run.network, shots.novel_index, shots.generator).numpy()
    weights, proxy_class = run.imprinted(averaged, shots.novel_labels)
    return shots.evaluated(name, run.network, run.extended(weights, proxy_class))


def _fine_tuned_from(shots: Shots, name: str, novel_weights) -> Rows:
    """Fine-tuning of a copy of the base network and its classifier extended by
    ``novel_weights``: all base training data plus the novel examples."""
    run = shots.run
    head = run.extended(novel_weights, shots.proxy_class)
    network = copy.deepcopy(run.network)
    return run.fine_tune(shots, name, network, head, fresh_head=False, new_modules=())


@register_method("Rand+FT", 4, trains=True)
def rand_ft(shots: Shots, name: str) -> Rows:
    """Fine-tuning from random novel weights."""
    return _fine_tuned_from(shots, name, shots.random_novel)


@register_method("Imprinting+FT", 5, trains=True)
def imprint_ft(shots: Shots, name: str) -> Rows:
    """Fine-tuning from imprinted novel weights."""
    return _fine_tuned_from(shots, name, shots.weights)


@register_method("AllClassJoint", 6, trains=True)
def all_class_joint(shots: Shots, name: str) -> Rows:
    """Every weight the base training learnt (the classifier, the embedding layer; a
    base_cnn's whole network in full scope), trained again from random on all classes."""
    import torch

    from imprint.models import cosine_classifier, random_unit_rows

    run = shots.run
    dim = shots.weights.shape[1]
    all_proxies = torch.cat(
        [torch.arange(run.n_base), run.n_base + torch.as_tensor(shots.proxy_class)]
    )
    head = cosine_classifier(
        random_unit_rows(len(all_proxies), dim, shots.generator), all_proxies, len(run.classes)
    ).to(run.device)
    network, new_modules = run.fresh_network(shots.generator)
    return run.fine_tune(shots, name, network, head, fresh_head=True, new_modules=new_modules)


@register_method("Nearest neighbour", 7, default=False)
def nearest_neighbour(shots: Shots, name: str) -> Rows:
    """Qi et al.'s Fig. 6: every novel example's normalised embedding stored as a proxy of its
    class, so that a test example takes the class of its nearest neighbour by cosine (the base
    classes keep their weights)."""
    from imprint.norm import l2_normalize

    run = shots.run
    stored = l2_normalize(np.asarray(shots.features, dtype=np.float64))
    return shots.evaluated(name, run.network, run.extended(stored, shots.novel_labels))


LOWSHOT_METHODS = tuple(METHODS)
#: The methods a config without ``lowshot.methods`` runs.
DEFAULT_METHODS = tuple(name for name, method in METHODS.items() if method.default)
#: Methods that train, evaluated after every epoch (their rows carry an ``epoch``).
TRAINED_METHODS = tuple(name for name, method in METHODS.items() if method.trains)
