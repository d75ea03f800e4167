"""Qi, Brown & Lowe, *Low-shot learning with imprinted weights* (CVPR 2018): imprinting as a
classifier and as the initialisation of fine-tuning, evaluated on the novel and on all classes.

A base network (embedding + :func:`imprint.models.cosine_classifier` over the base classes) is
extended with weights for novel classes learnt from ``n`` examples each. The methods
(:data:`LOWSHOT_METHODS`, Qi et al.'s names in brackets):

- ``rand_noft`` (Rand-noFT): random novel weights, no training;
- ``imprint`` (Imprinting): each novel class's weight is the L2-normalised mean of its
  examples' L2-normalised embeddings (or, with ``init_gen="kmeans"``, k k-means proxies per
  class scored with AGG max: the IMPRINT paper's best GEN as the initialisation);
- ``imprint_aug`` (Imprinting+Aug): the same from each example's embedding averaged over
  ``copies`` random augmentations;
- ``rand_ft`` / ``imprint_ft`` (Rand+FT / Imprinting+FT): fine-tuning from random / imprinted
  novel weights on all base training data plus the novel examples, novel classes oversampled
  so that every class is equally frequent in every mini-batch, the new weights at
  ``new_weight_multiplier`` times the learning rate; ``scope="full"`` trains the whole network
  on augmented images, ``scope="head"`` only the classifier, on cached embeddings;
- ``all_class_joint`` (AllClassJoint): a network (``full``) or classifier (``head``) trained
  from scratch on the same data.

Accuracies (Qi et al.'s Tables 1-2): ``novel_accuracy`` over the test examples of the novel
classes, ``all_accuracy`` over those of all classes, both predicted among all (base + novel)
classes. Fine-tuned methods are evaluated before training (epoch 0) and after every epoch.

Everything here is plain functions on tensors and indexable datasets; the workflow's stage is
:func:`imprint.stages.run_lowshot`.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# The library modules that train and imprint are imported where they are used, so that the
# figure jobs, which read this module's constants, do not depend on them (imprint.codehash).

log = logging.getLogger(__name__)

LOWSHOT_METHODS = (
    "rand_noft",
    "imprint",
    "imprint_aug",
    "rand_ft",
    "imprint_ft",
    "all_class_joint",
)
#: Methods that train, evaluated after every epoch (their rows carry an ``epoch``).
TRAINED_METHODS = ("rand_ft", "imprint_ft", "all_class_joint")
#: ``full``: fine-tune the whole network on images; ``head``: only the classifier, on embeddings.
SCOPES = ("full", "head")
#: The GEN methods that initialise novel weights (``lowshot.init.gen``).
INIT_GENS = ("mean", "kmeans")
#: Model sources whose network the ``full`` scope can fine-tune (the others have no network:
#: ``pixels`` is the identity, ``precomputed`` only embeddings).
FINE_TUNABLE_SOURCES = frozenset({"base_cnn", "torchvision", "timm", "python"})
#: The columns of a low-shot table, in order.
COLUMNS = (
    "model",
    "task",
    "seed",
    "scope",
    "init",
    "n_shot",
    "method",
    "epoch",
    "novel_accuracy",
    "all_accuracy",
)


@dataclass(frozen=True)
class LowShotOptions:
    """The ``lowshot:`` section of the config, minus its tasks (see the schema)."""

    n_shot: tuple[int, ...] = (1, 2, 5, 10, 20)
    methods: tuple[str, ...] = LOWSHOT_METHODS
    scope: str = "head"
    init_gen: str = "mean"
    init_k: int = 1
    epochs: int = 10
    joint_epochs: int = 20
    base_epochs: int = 20
    learning_rate: float = 0.001
    new_weight_multiplier: float = 10.0
    batch_size: int = 50
    momentum: float = 0.9
    weight_decay: float = 5e-4
    shift: int = 1
    flip: bool = False
    copies: int = 5
    device: str = "cpu"
    num_workers: int = 0

    def __post_init__(self) -> None:
        unknown = [method for method in self.methods if method not in LOWSHOT_METHODS]
        if unknown:
            raise ValueError(f"unknown low-shot methods {unknown}; expected {LOWSHOT_METHODS}")
        if self.scope not in SCOPES:
            raise ValueError(f"unknown scope {self.scope!r}; expected one of {SCOPES}")
        if self.init_gen not in INIT_GENS:
            raise ValueError(f"unknown init GEN {self.init_gen!r}; expected one of {INIT_GENS}")
        for name in ("epochs", "joint_epochs", "base_epochs", "batch_size", "copies", "init_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.learning_rate <= 0 or self.new_weight_multiplier <= 0:
            raise ValueError("learning_rate and new_weight_multiplier must be positive")

    @classmethod
    def from_config(cls, section: Mapping[str, Any], scope: str, n_shot: Sequence[int]):
        augmentation = section.get("augmentation", {})
        init = section.get("init", {})
        return cls(
            n_shot=tuple(n_shot),
            methods=tuple(section["methods"]),
            scope=scope,
            init_gen=init.get("gen", "mean"),
            init_k=init.get("k", 1),
            epochs=section["epochs"],
            joint_epochs=section["joint_epochs"],
            base_epochs=section["base_epochs"],
            learning_rate=section["learning_rate"],
            new_weight_multiplier=section["new_weight_multiplier"],
            batch_size=section["batch_size"],
            momentum=section["momentum"],
            weight_decay=section["weight_decay"],
            shift=augmentation.get("shift", 1),
            flip=augmentation.get("flip", False),
            copies=augmentation.get("copies", 5),
            device=section.get("device", "cpu"),
            num_workers=section.get("num_workers", 0),
        )

    @property
    def init(self) -> str:
        """The ``init`` column: ``mean``, or ``kmeans-<k>``."""
        return self.init_gen if self.init_gen == "mean" else f"{self.init_gen}-{self.init_k}"


@dataclass
class LowShotData:
    """What one low-shot job works on. Labels are the dataset's class ids.

    ``scope="head"`` needs ``train_embeddings``/``test_embeddings`` (the cached embeddings of
    the whole splits); ``scope="full"`` and ``imprint_aug`` need ``network`` (images ->
    embeddings) and ``train_images``/``test_images`` (indexable, item ``(tensor, label)``,
    preprocessed for the network). ``base_head``: the network's trained cosine classifier over
    ``base_classes`` in that order, or None to train one on the base classes' embeddings.
    ``fresh_network``: a callable giving an untrained network of the same architecture, for
    ``all_class_joint`` with ``scope="full"``.
    """

    base_classes: list[int]
    novel_classes: list[int]
    train_labels: np.ndarray
    test_labels: np.ndarray
    train_embeddings: np.ndarray | None = None
    test_embeddings: np.ndarray | None = None
    network: Any = None
    train_images: Any = None
    test_images: Any = None
    base_head: Any = None
    fresh_network: Callable[[], Any] | None = None


def run_seed(data: LowShotData, options: LowShotOptions, seed: int) -> list[dict[str, Any]]:
    """Every configured method for every n, for one seed: rows of (n_shot, method, epoch,
    novel_accuracy, all_accuracy); ``epoch`` is None for methods that do not train."""
    import torch

    # One intra-op thread, as for the base CNN (imprint.models.train_base_cnn): the same
    # seed then gives the same bytes whatever the machine's cores.
    previous_threads = torch.get_num_threads()
    from imprint.devices import resolve_device

    device = resolve_device(options.device)
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        return _LowShotRun(data, options, seed, device).rows()
    finally:
        torch.set_num_threads(previous_threads)


def novel_examples(
    train_labels: np.ndarray, novel_classes: Sequence[int], n_values: Sequence[int], seed: int
) -> dict[int, np.ndarray]:
    """Per n, the train indices of n examples of each novel class (class by class). The sets
    are nested (the n = 2 examples include the n = 1 example), as a user adding examples
    would have them, so that differences between n are not differences between draws."""
    chosen: dict[int, list[np.ndarray]] = {n: [] for n in n_values}
    for cls in novel_classes:
        members = np.flatnonzero(train_labels == cls)
        rng = np.random.default_rng(np.random.SeedSequence([seed, int(cls)]))
        order = rng.permutation(members)
        for n in n_values:
            if n > len(order):
                raise ValueError(f"n = {n} exceeds the {len(order)} train examples of class {cls}")
            chosen[n].append(np.sort(order[:n]))
    return {n: np.concatenate(parts) for n, parts in chosen.items()}


def balanced_order(
    sample_class: np.ndarray, n_classes: int, rng: np.random.Generator
) -> np.ndarray:
    """One epoch's order of the positions of a training pool, in which every class is equally
    frequent in every run of ``n_classes`` consecutive positions (so in every mini-batch of a
    multiple of ``n_classes``): Qi et al.'s oversampling of the novel classes.

    Every class contributes as many positions as the largest class has samples; smaller
    classes repeat theirs, each pass in a new random order. Written by hand: torch's
    ``WeightedRandomSampler`` balances classes only in expectation, not per batch.
    """
    members = [np.flatnonzero(sample_class == c) for c in range(n_classes)]
    if any(len(m) == 0 for m in members):
        empty = [c for c, m in enumerate(members) if len(m) == 0]
        raise ValueError(f"classes {empty} have no training samples")
    per_class = max(len(m) for m in members)
    columns = []
    for m in members:
        passes = -(-per_class // len(m))
        columns.append(np.concatenate([rng.permutation(m) for _ in range(passes)])[:per_class])
    rows = np.stack(columns, axis=1)  # [per_class, n_classes]: each row holds every class once
    return rows[rng.permutation(per_class)].reshape(-1)


def augment(images, shift: int, flip: bool, generator):
    """Random translations by up to ``shift`` pixels (zero padding, then a random crop back to
    the size) and, with ``flip``, random horizontal flips, drawn per image from ``generator``.

    Written by hand: torchvision's random transforms draw from torch's global random state and
    one image at a time; this draws a batch from the run's own generator.
    """
    import torch
    from torch.nn import functional

    if shift <= 0 and not flip:
        return images
    batch, _, height, width = images.shape
    out = images
    if shift > 0:
        padded = functional.pad(images, (shift, shift, shift, shift))
        offsets = torch.randint(0, 2 * shift + 1, (batch, 2), generator=generator)
        out = torch.stack(
            [
                padded[i, :, dy : dy + height, dx : dx + width]
                for i, (dy, dx) in enumerate(offsets.tolist())
            ]
        )
    if flip:
        flipped = torch.rand(batch, generator=generator) < 0.5
        out = torch.where(flipped[:, None, None, None], out.flip(-1), out)
    return out


def imprinted_weights(
    embeddings: np.ndarray, labels: np.ndarray, gen: str, k: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Novel weights ``[P, d]`` and their class (``labels`` values) by imprinting: L2-normalise
    the embeddings, GEN (``mean``: Qi et al.; ``kmeans``: k proxies per class), L2-normalise
    the proxies."""
    from imprint.gen import generate_proxies
    from imprint.norm import l2_normalize

    normalised = l2_normalize(np.asarray(embeddings, dtype=np.float64))
    proxies, proxy_labels = generate_proxies(normalised, labels, gen, k=k, random_state=seed)
    return l2_normalize(proxies), proxy_labels


def accuracies(predicted: np.ndarray, targets: np.ndarray, n_base: int) -> tuple[float, float]:
    """(novel-class accuracy, all-class accuracy) of predictions among all classes; classes
    from ``n_base`` on are the novel ones."""
    correct = predicted == targets
    novel = targets >= n_base
    return float(correct[novel].mean()), float(correct.mean())


#: Image datasets up to this size are decoded once and kept as one tensor (the digits: 0.2 MB).
IN_MEMORY_BYTES = 1 << 30


class _TensorImages:
    """Decoded images ``[N, C, H, W]`` and labels, indexable like the dataset they came from."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index], int(self.labels[index])


def _in_memory(images, num_workers: int):
    """``images`` decoded into a :class:`_TensorImages` where they fit in
    :data:`IN_MEMORY_BYTES` (fine-tuning reads every image once per epoch), else unchanged."""
    import torch
    from torch.utils.data import DataLoader

    if images is None or isinstance(images, _TensorImages) or len(images) == 0:
        return images
    if len(images) * images[0][0].numel() * 4 > IN_MEMORY_BYTES:
        return images
    batches = list(DataLoader(images, batch_size=1024, num_workers=num_workers))
    return _TensorImages(
        torch.cat([b for b, _ in batches]), torch.cat([label for _, label in batches]).numpy()
    )


def _stack(images, index: np.ndarray):
    """The images at ``index`` as one batch tensor."""
    import torch

    if isinstance(images, _TensorImages):
        return images.images[torch.as_tensor(index)]
    return torch.stack([images[int(i)][0] for i in index])


def _run_seed_state(seed: int, *parts: int):
    """A torch generator for one part of a run (n, method, ...), independent of the others."""
    import torch

    state = np.random.SeedSequence([seed, *parts]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


class _LowShotRun:
    """One seed's run; holds what its methods share (class maps, base embeddings, base head)."""

    def __init__(self, data: LowShotData, options: LowShotOptions, seed: int, device):
        import torch

        self.data, self.options, self.seed, self.device = data, options, seed, device
        self.classes = [*data.base_classes, *data.novel_classes]
        self.n_base = len(data.base_classes)
        index = {c: i for i, c in enumerate(self.classes)}
        self.train_class = np.array([index.get(int(c), -1) for c in data.train_labels])
        test_class = np.array([index.get(int(c), -1) for c in data.test_labels])
        self.test_index = np.flatnonzero(test_class >= 0)
        self.test_targets = test_class[self.test_index]
        self.base_pool = np.flatnonzero((self.train_class >= 0) & (self.train_class < self.n_base))
        if options.scope == "head":
            if data.train_embeddings is None or data.test_embeddings is None:
                raise ValueError("scope 'head' needs the train and test embeddings")
            self.train_x = torch.as_tensor(data.train_embeddings, dtype=torch.float32)
            self.test_x = torch.as_tensor(
                data.test_embeddings[self.test_index], dtype=torch.float32
            )
        elif data.network is None or data.train_images is None or data.test_images is None:
            raise ValueError("scope 'full' needs the network and the train and test images")
        self.network = None if data.network is None else data.network.to(device).eval()
        self.train_images = _in_memory(data.train_images, options.num_workers)
        self.test_images = _in_memory(data.test_images, options.num_workers)
        torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")
        self.base_head = (
            data.base_head.to(device) if data.base_head is not None else self._train_base_head()
        )

    # -- features -------------------------------------------------------------------------

    def _images(self, images, index: np.ndarray):
        """The images at ``index``, batched by a DataLoader (its workers decode in parallel)."""
        from torch.utils.data import DataLoader, Subset

        if isinstance(images, _TensorImages):
            yield from _stack(images, index).split(max(self.options.batch_size, 256))
            return
        loader = DataLoader(
            Subset(images, index.tolist()),
            batch_size=max(self.options.batch_size, 256),
            num_workers=self.options.num_workers,
        )
        for batch, _ in loader:
            yield batch

    def _embed(self, network, images, index: np.ndarray, generator=None):
        import torch

        parts = []
        with torch.inference_mode():
            for batch in self._images(images, index):
                if generator is not None:
                    batch = augment(batch, self.options.shift, self.options.flip, generator)
                parts.append(network(batch.to(self.device)).float().cpu())
        return torch.cat(parts)

    def _image_batches(self, batches: list[np.ndarray]):
        """The images of each batch of train indices, in order: sliced from memory, or decoded
        by a DataLoader's workers (``num_workers``) while the network trains."""
        from torch.utils.data import DataLoader

        if isinstance(self.train_images, _TensorImages):
            return (_stack(self.train_images, batch) for batch in batches)
        loader = DataLoader(
            self.train_images,
            batch_sampler=[batch.tolist() for batch in batches],
            num_workers=self.options.num_workers,
        )
        return (images for images, _ in loader)

    def _train_features(self, index: np.ndarray):
        """Embeddings of train samples by the frozen base network (or the cached ones)."""
        if self.options.scope == "head":
            return self.train_x[index]
        return self._embed(self.network, self.train_images, index)

    def _augmented_features(self, index: np.ndarray, generator):
        """Per sample, the mean of the L2-normalised embeddings of ``copies`` augmentations."""
        from torch.nn import functional

        if self.network is None or self.train_images is None:
            raise ValueError("imprint_aug needs the network and the train images")
        copies = [
            functional.normalize(
                self._embed(self.network, self.train_images, index, generator), dim=1
            )
            for _ in range(self.options.copies)
        ]
        return sum(copies) / len(copies)

    # -- classifiers ------------------------------------------------------------------------

    def _train_base_head(self):
        """Where the model has no cosine classifier: one trained on the base classes' frozen
        embeddings (from random weights, ``base_epochs`` epochs, balanced batches)."""
        import torch

        from imprint.models import cosine_classifier, random_unit_rows

        generator = _run_seed_state(self.seed, 0)
        features = self._train_features(self.base_pool)
        head = cosine_classifier(
            random_unit_rows(self.n_base, features.shape[1], generator),
            torch.arange(self.n_base),
            self.n_base,
        ).to(self.device)
        start = time.perf_counter()
        self._train(
            None,
            head,
            features,
            self.train_class[self.base_pool],
            self.options.base_epochs,
            from_scratch=True,
            generator=generator,
            evaluate=None,
        )
        log.info(
            "base classifier trained on %d embeddings in %.2f s",
            len(self.base_pool),
            time.perf_counter() - start,
        )
        return head.eval()

    def _extended(self, weights, proxy_class):
        import torch

        return self.base_head.extended(
            torch.as_tensor(weights, dtype=torch.float32), proxy_class, len(self.data.novel_classes)
        ).to(self.device)

    # -- evaluation and training --------------------------------------------------------------

    def _evaluate(self, network, head) -> tuple[float, float]:
        import torch

        head.eval()
        with torch.inference_mode():
            if self.options.scope == "head":
                logits = torch.cat(
                    [head(chunk.to(self.device)) for chunk in self.test_x.split(4096)]
                )
            else:
                network.eval()
                logits = head(
                    self._embed(network, self.test_images, self.test_index).to(self.device)
                )
        return accuracies(logits.argmax(1).cpu().numpy(), self.test_targets, self.n_base)

    def _train(
        self,
        network,
        head,
        pool,
        pool_class: np.ndarray,
        epochs: int,
        from_scratch: bool,
        generator,
        evaluate: Callable[[int], None] | None,
    ) -> None:
        """SGD with momentum on balanced mini-batches of ``pool`` (embeddings for a head alone,
        train indices of images for a network), evaluating after every epoch. ``from_scratch``:
        every weight is new (all at the new weights' learning rate)."""
        import torch
        from torch.nn import functional

        o = self.options
        # Pretrained weights learn at the learning rate, new ones (the novel classes', or all of
        # them when trained from scratch) at new_weight_multiplier times it (Qi et al.: 10x).
        new_rate = o.learning_rate * o.new_weight_multiplier
        old_rate = new_rate if from_scratch else o.learning_rate
        head_blocks = list(head.blocks)
        groups = [
            {"params": [head.scale], "lr": old_rate, "weight_decay": 0.0},
            {"params": head_blocks[:1], "lr": old_rate},
        ]
        if len(head_blocks) > 1:
            groups.append({"params": head_blocks[1:], "lr": new_rate})
        if network is not None:
            network.requires_grad_(True)
            groups.append({"params": list(network.parameters()), "lr": old_rate})
        optimiser = torch.optim.SGD(
            groups, lr=o.learning_rate, momentum=o.momentum, weight_decay=o.weight_decay
        )
        rng = np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=generator)))
        targets = torch.as_tensor(pool_class, dtype=torch.long)
        for epoch in range(1, epochs + 1):
            head.train()
            if network is not None:
                network.train()
            order = balanced_order(pool_class, head.n_classes, rng)
            batches = [
                order[start : start + o.batch_size] for start in range(0, len(order), o.batch_size)
            ]
            inputs = (
                (pool[batch] for batch in batches)
                if network is None
                else self._image_batches([pool[batch] for batch in batches])
            )
            for batch, x in zip(batches, inputs, strict=True):
                if network is None:
                    logits = head(x.to(self.device))
                else:
                    images = augment(x, o.shift, o.flip, generator).to(self.device)
                    logits = head(network(images))
                loss = functional.cross_entropy(logits, targets[batch].to(self.device))
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
            if evaluate is not None:
                evaluate(epoch)

    def _fine_tune(self, method: str, head, novel_index: np.ndarray, generator, n: int):
        """Rows of epochs 0..E of a fine-tuned method (epoch 0: before training)."""
        o = self.options
        joint = method == "all_class_joint"
        if o.scope == "full":
            if joint:
                if self.data.fresh_network is None:
                    raise ValueError("all_class_joint with scope 'full' needs an untrained network")
                network = self.data.fresh_network().to(self.device)
            else:
                network = copy.deepcopy(self.network)
        else:
            network = None
        pool_index = np.concatenate([self.base_pool, novel_index])
        pool_class = self.train_class[pool_index]
        pool = self.train_x[pool_index] if o.scope == "head" else pool_index
        rows = []

        def evaluate(epoch: int) -> None:
            novel, overall = self._evaluate(network, head)
            rows.append(self._row(n, method, epoch, novel, overall))

        evaluate(0)
        start = time.perf_counter()
        epochs = o.joint_epochs if joint else o.epochs
        self._train(
            network,
            head,
            pool,
            pool_class,
            epochs,
            from_scratch=joint,
            generator=generator,
            evaluate=evaluate,
        )
        log.info(
            "n=%d %s: %d epochs in %.2f s (%.3f s/epoch with evaluation); novel %.3f, all %.3f",
            n,
            method,
            epochs,
            time.perf_counter() - start,
            (time.perf_counter() - start) / epochs,
            rows[-1]["novel_accuracy"],
            rows[-1]["all_accuracy"],
        )
        return rows

    def _row(self, n: int, method: str, epoch: int | None, novel: float, overall: float):
        return {
            "n_shot": n,
            "method": method,
            "epoch": epoch,
            "novel_accuracy": novel,
            "all_accuracy": overall,
        }

    def rows(self) -> list[dict[str, Any]]:
        import torch

        from imprint.models import cosine_classifier, random_unit_rows

        o = self.options
        novel_sets = novel_examples(
            self.data.train_labels, self.data.novel_classes, o.n_shot, self.seed
        )
        rows: list[dict[str, Any]] = []
        for n in o.n_shot:
            novel_index = novel_sets[n]
            novel_labels = self.train_class[novel_index] - self.n_base
            features = self._train_features(novel_index).numpy()
            weights, proxy_class = imprinted_weights(
                features, novel_labels, o.init_gen, o.init_k, self.seed
            )
            for position, method in enumerate(LOWSHOT_METHODS):
                if method not in o.methods:
                    continue
                generator = _run_seed_state(self.seed, n, position + 1)
                torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=generator)))
                random_novel = random_unit_rows(len(proxy_class), weights.shape[1], generator)
                if method == "rand_noft":
                    head = self._extended(random_novel, proxy_class)
                    rows.append(self._row(n, method, None, *self._evaluate(self.network, head)))
                elif method == "imprint":
                    head = self._extended(weights, proxy_class)
                    rows.append(self._row(n, method, None, *self._evaluate(self.network, head)))
                elif method == "imprint_aug":
                    averaged = self._augmented_features(novel_index, generator).numpy()
                    aug_weights, aug_class = imprinted_weights(
                        averaged, novel_labels, o.init_gen, o.init_k, self.seed
                    )
                    head = self._extended(aug_weights, aug_class)
                    rows.append(self._row(n, method, None, *self._evaluate(self.network, head)))
                elif method in ("rand_ft", "imprint_ft"):
                    start = random_novel if method == "rand_ft" else weights
                    head = self._extended(start, proxy_class)
                    rows.extend(self._fine_tune(method, head, novel_index, generator, n))
                else:  # all_class_joint: every class's weights random, nothing pretrained
                    dim = weights.shape[1]
                    all_proxies = torch.cat(
                        [torch.arange(self.n_base), self.n_base + torch.as_tensor(proxy_class)]
                    )
                    head = cosine_classifier(
                        random_unit_rows(len(all_proxies), dim, generator),
                        all_proxies,
                        len(self.classes),
                    ).to(self.device)
                    rows.extend(self._fine_tune(method, head, novel_index, generator, n))
            log.info("n=%d done", n)
        return rows


def lowshot_scope(requested: str, model_spec: Mapping[str, Any]) -> str:
    """``lowshot.scope``: ``auto`` fine-tunes the whole network of a ``base_cnn`` (small, and
    trained by the workflow) and only the classifier of any other model."""
    if requested != "auto":
        return requested
    return "full" if model_spec["source"] == "base_cnn" else "head"


def task_base_classes(task_spec: Mapping[str, Any], model_spec: Mapping[str, Any]) -> list[int]:
    """The base classes of a low-shot task: its own, else the ``base_cnn``'s training classes."""
    if "base_classes" in task_spec:
        return list(task_spec["base_classes"])
    return list(model_spec.get("base_classes", []))


def task_dataset(task_spec: Mapping[str, Any], model_spec: Mapping[str, Any]) -> str | None:
    """The dataset of a low-shot task: its own, else the one the ``base_cnn`` trained on."""
    return task_spec.get("dataset", model_spec.get("dataset"))


def results_table(rows: Sequence[Mapping[str, Any]], **constants: Any):
    """The rows of :func:`run_seed` as a table with :data:`COLUMNS` (``constants``: model,
    task, seed, scope, init); ``epoch`` is a nullable integer, empty for untrained methods."""
    import pandas as pd

    table = pd.DataFrame(list(rows))
    for name, value in constants.items():
        table[name] = value
    table["epoch"] = table["epoch"].astype("Int64")
    return table[list(COLUMNS)]
