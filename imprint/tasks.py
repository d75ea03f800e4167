"""Task construction: class subsets, "d in 1" label remaps and n-shot subsamples, per seed.

A task is written as index files into a dataset's splits, so every FM reuses it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

#: Class selectors, ``{name: value}`` in a config: the classes of a task or low-shot section
#: in one line, from the dataset's classes in their order and their train-image counts.
CLASS_SELECTORS: dict[str, Callable[[Sequence[int], Mapping[int, int], int], list[int]]] = {
    "first": lambda available, counts, n: list(available[:n]),
    "last": lambda available, counts, n: list(available[-n:]),
    "min_train_images": lambda available, counts, n: [c for c in available if counts[c] >= n],
    "max_train_images": lambda available, counts, n: [c for c in available if counts[c] <= n],
}
#: The selectors that need the train labels (the others, only the class ids).
COUNTING_SELECTORS = ("min_train_images", "max_train_images")


def select_classes(
    selector: Any, available: Sequence[int], train_labels: np.ndarray | None = None
) -> list[int]:
    """The class ids a selector picks: a list of ids as written, ``{first: n}`` / ``{last: n}``
    of the dataset's classes in id order, or the classes with at least / at most N train
    images (``{min_train_images: N}`` / ``{max_train_images: N}``, which need
    ``train_labels``). Raises ValueError where it selects nothing."""
    if not isinstance(selector, Mapping):
        return list(selector)
    ((name, value),) = selector.items()
    if name in ("first", "last") and value > len(available):
        raise ValueError(f"{{{name}: {value}}}: the dataset has {len(available)} classes")
    if name in COUNTING_SELECTORS and train_labels is None:
        raise ValueError(f"selector {name!r} needs the dataset's train labels")
    counts: dict[int, int] = {}
    if train_labels is not None:
        ids, sizes = np.unique(np.asarray(train_labels), return_counts=True)
        counts = dict(zip(ids.tolist(), sizes.tolist(), strict=True))
    per_class = {int(c): counts.get(int(c), 0) for c in available}
    chosen = CLASS_SELECTORS[name](sorted(available), per_class, value)
    if not chosen:
        raise ValueError(f"{{{name}: {value}}} selects no class of the dataset's {len(available)}")
    return chosen


def needs_train_labels(selector: Any) -> bool:
    """Whether a selector can only be resolved with the train labels."""
    return isinstance(selector, Mapping) and any(name in COUNTING_SELECTORS for name in selector)


def task_classes(
    spec: Mapping[str, Any], available: Sequence[int], train_labels: np.ndarray | None = None
) -> list[int]:
    """The original class ids a task draws from.

    ``classes``: ``all`` (every available class), a list of ids, ``{sample: n, seed: s}``: n
    classes drawn with ``random.Random(s).sample`` from the sorted ids, which for ImageNet's
    0..999 and s = 420 gives the IMPRINT paper's fixed pool of 100 "d in 1" classes, or one of
    :data:`CLASS_SELECTORS` (see :func:`select_classes`).
    """
    classes = spec.get("classes", "all")
    if classes == "all":
        return sorted(available)
    if isinstance(classes, Mapping) and "sample" in classes:
        if classes["sample"] > len(available):
            raise ValueError(f"cannot sample {classes['sample']} of {len(available)} classes")
        return random.Random(classes["seed"]).sample(sorted(available), classes["sample"])
    return select_classes(classes, available, train_labels)


def label_map(
    spec: Mapping[str, Any],
    available: Sequence[int],
    seed: int,
    train_labels: np.ndarray | None = None,
) -> dict[int, int]:
    """Original class id -> task label.

    Without ``d_in_1`` each listed class keeps its own label (its position in the list). With
    ``d_in_1: d`` (the IMPRINT paper's ImageNet remaps) the class pool is shuffled by ``seed`` and
    cut into ``n_labels`` blocks of equal stride; label j merges the first d classes of block j, so
    the classes used for d are a subset of those for d + 1 under the same seed.
    """
    classes = task_classes(spec, available, train_labels)
    if "d_in_1" not in spec:
        return {c: i for i, c in enumerate(classes)}
    d = spec["d_in_1"]
    n_labels = spec.get("n_labels", len(classes) // d)
    stride = len(classes) // n_labels if n_labels else 0
    if n_labels < 1 or stride < d:
        raise ValueError(
            f"'d_in_1: {d}' with {n_labels} labels needs {max(n_labels, 1) * d} classes, "
            f"the task has {len(classes)}"
        )
    pool = np.random.default_rng(seed).permutation(classes)
    return {int(pool[j * stride + i]): j for j in range(n_labels) for i in range(d)}


def build_task(
    spec: Mapping[str, Any],
    train_labels: np.ndarray,
    test_labels: np.ndarray,
    available: Sequence[int],
    seed: int,
) -> dict[str, np.ndarray]:
    """Index arrays of one task for one seed.

    Returns ``full_train_index/label`` (every train sample of the task's classes, remapped: used
    for NC1), ``train_index/label`` (after n-shot subsampling: used for imprinting) and
    ``test_index/label``. ``n_shot: n`` draws n train samples per task label without
    replacement; for one seed the draws for a smaller n are a subset of those for a larger n.
    """
    mapping = label_map(spec, available, seed, train_labels)
    rng = np.random.default_rng([seed, 1])  # independent of the remap's stream

    def select(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        index = np.flatnonzero(np.isin(labels, list(mapping)))
        return index, np.asarray([mapping[int(c)] for c in labels[index]], dtype=np.int64)

    full_index, full_label = select(train_labels)
    test_index, test_label = select(test_labels)
    n_shot = spec.get("n_shot", "all")
    if n_shot == "all":
        train_index, train_label = full_index, full_label
    else:
        chosen = []
        for label in range(max(mapping.values()) + 1):
            members = full_index[full_label == label]
            if len(members) < n_shot:
                raise ValueError(
                    f"n_shot {n_shot} exceeds the {len(members)} train samples "
                    f"of task label {label}"
                )
            chosen.append(np.sort(rng.permutation(members)[:n_shot]))
        train_index = np.concatenate(chosen)
        train_label = np.asarray([mapping[int(c)] for c in train_labels[train_index]])
    for name, labels in [("train", train_label), ("test", test_label)]:
        missing = set(range(max(mapping.values()) + 1)) - set(labels.tolist())
        if missing:
            raise ValueError(f"task labels {sorted(missing)} have no {name} samples")
    return {
        "full_train_index": full_index,
        "full_train_label": full_label,
        "train_index": train_index,
        "train_label": train_label.astype(np.int64),
        "test_index": test_index,
        "test_label": test_label,
        "original_class": np.asarray(sorted(mapping), dtype=np.int64),
        "task_label": np.asarray([mapping[c] for c in sorted(mapping)], dtype=np.int64),
    }
