"""Qi, Brown & Lowe, *Low-shot learning with imprinted weights* (CVPR 2018): imprinting as a
classifier and as the initialisation of fine-tuning, evaluated on the novel and on all classes.

A base network (the FM's embedding, optionally Qi et al.'s fully connected **embedding layer**
of ``embedding_dim`` outputs on top, then :func:`imprint.models.cosine_classifier` over the base
classes) is extended with weights for novel classes learnt from ``n`` examples each.

The code has three parts:

- **Features** (:class:`_Features`): what the base network reads. ``scope="head"`` reads the
  FM's cached embeddings, and the trainable network is the embedding layer (or nothing);
  ``scope="full"`` reads images through the whole network (FM + layer), which trains too.
- **One training function** (:func:`_train`): balanced mini-batches, pretrained and new
  weights in their own parameter groups, SGD or RMSProp, optional step-exponential decay.
- **The methods** (:mod:`imprint.lowshot_methods`: one function each, registered in
  :data:`METHODS` with ``@register_method``; Qi et al.'s names in brackets). A method is a
  function of one ``n``'s :class:`Shots`; its random draws come from a generator keyed by its
  fixed ``seed_key``, never by its position, so adding or reordering methods changes no other
  method's results.

  - ``rand_noft`` (Rand-noFT): random novel weights, no training;
  - ``imprint`` (Imprinting): each novel class's weight is the L2-normalised mean of its
    examples' L2-normalised embeddings (or, with ``init_gen="kmeans"``, k k-means proxies per
    class scored with AGG max: the IMPRINT paper's best GEN as the initialisation);
  - ``imprint_aug`` (Imprinting+Aug): the same from each example's embedding averaged over
    ``copies`` random augmentations;
  - ``rand_ft`` / ``imprint_ft`` (Rand+FT / Imprinting+FT): fine-tuning from random / imprinted
    novel weights on all base training data plus the novel examples, novel classes oversampled
    so that every class is equally frequent in every mini-batch, the new weights at
    ``new_weight_multiplier`` times the learning rate;
  - ``all_class_joint`` (AllClassJoint): the base network's trained part (classifier, embedding
    layer; a ``base_cnn``'s whole network with ``scope="full"``) trained from scratch on the
    same data;
  - ``nearest_neighbour`` (Qi et al.'s Fig. 6): every novel example's normalised embedding
    stored as a proxy of its class, so that a test example takes the class of its nearest
    neighbour by cosine (base classes keep their weights).

Accuracies (Qi et al.'s Tables 1-2): ``novel_accuracy`` over the test examples of the novel
classes, ``all_accuracy`` over those of all classes, both predicted among all (base + novel)
classes. With no base classes (Qi et al.'s Table 3, transfer) the two are the same. Fine-tuned
methods are evaluated before training (epoch 0) and after every epoch. A list of
``embedding_dims`` runs everything once per dimension (Fig. 7), each with its own base network.

Everything here is plain functions on tensors and indexable datasets; the workflow's stage is
:func:`imprint.stages.run_lowshot`.
"""

from __future__ import annotations

import copy
import functools
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from imprint.lowshot_methods import DEFAULT_METHODS, LOWSHOT_METHODS, METHODS

# The library modules that train and imprint are imported where they are used, so that the
# figure jobs, which read this module's constants, do not depend on them (imprint.codehash).

log = logging.getLogger(__name__)

#: ``full``: fine-tune the whole network on images; ``head``: only what sits on the cached
#: embeddings (the classifier, and the embedding layer if any).
SCOPES = ("full", "head")
#: The GEN methods that initialise novel weights (``lowshot.init.gen``).
INIT_GENS = ("mean", "kmeans")
#: Optimisers of every training run (``lowshot.optimizer``).
OPTIMIZERS = ("sgd", "rmsprop")
#: The columns of a low-shot table, in order.
COLUMNS = (
    "model",
    "task",
    "seed",
    "scope",
    "init",
    "embedding_dim",
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
    methods: tuple[str, ...] = DEFAULT_METHODS
    scope: str = "head"
    init_gen: str = "mean"
    init_k: int = 1
    embedding_dims: tuple[int, ...] = ()  # () = no embedding layer
    epochs: int = 10
    joint_epochs: int = 20
    base_epochs: int = 20
    optimizer: str = "sgd"
    learning_rate: float = 0.001
    new_weight_multiplier: float = 10.0
    lr_decay_factor: float = 1.0
    lr_decay_epochs: int = 1
    batch_size: int = 50
    momentum: float = 0.9
    rmsprop_alpha: float = 0.9
    rmsprop_eps: float = 1.0
    weight_decay: float = 5e-4
    shift: int = 1
    flip: bool = False
    copies: int = 5
    device: str = "auto"
    num_workers: int = 0

    def __post_init__(self) -> None:
        unknown = [method for method in self.methods if method not in METHODS]
        if unknown:
            raise ValueError(f"unknown low-shot methods {unknown}; expected {LOWSHOT_METHODS}")
        for name, value, known in (
            ("scope", self.scope, SCOPES),
            ("init GEN", self.init_gen, INIT_GENS),
            ("optimizer", self.optimizer, OPTIMIZERS),
        ):
            if value not in known:
                raise ValueError(f"unknown {name} {value!r}; expected one of {known}")
        for name in (
            "epochs",
            "joint_epochs",
            "base_epochs",
            "batch_size",
            "copies",
            "init_k",
            "lr_decay_epochs",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if any(dim < 1 for dim in self.embedding_dims):
            raise ValueError(f"embedding_dim must be >= 1, got {list(self.embedding_dims)}")
        if self.learning_rate <= 0 or self.new_weight_multiplier <= 0:
            raise ValueError("learning_rate and new_weight_multiplier must be positive")
        if not 0 < self.lr_decay_factor <= 1:
            raise ValueError(f"lr_decay factor must be in (0, 1], got {self.lr_decay_factor}")

    @classmethod
    def from_config(cls, section: Mapping[str, Any], scope: str, n_shot: Sequence[int]):
        """From a validated ``lowshot:`` section (the schema fills in every default)."""
        augmentation, init = section["augmentation"], section["init"]
        decay, rmsprop = section["lr_decay"], section["rmsprop"]
        return cls(
            n_shot=tuple(n_shot),
            methods=tuple(section["methods"]),
            scope=scope,
            init_gen=init["gen"],
            init_k=init["k"],
            embedding_dims=embedding_dims(section),
            epochs=section["epochs"],
            joint_epochs=section["joint_epochs"],
            base_epochs=section["base_epochs"],
            optimizer=section["optimizer"],
            learning_rate=section["learning_rate"],
            new_weight_multiplier=section["new_weight_multiplier"],
            lr_decay_factor=decay["factor"],
            lr_decay_epochs=decay["every_epochs"],
            batch_size=section["batch_size"],
            momentum=section["momentum"],
            rmsprop_alpha=rmsprop["alpha"],
            rmsprop_eps=rmsprop["eps"],
            weight_decay=section["weight_decay"],
            shift=augmentation["shift"],
            flip=augmentation["flip"],
            copies=augmentation["copies"],
            device=section["device"],
            num_workers=section["num_workers"],
        )

    @property
    def init(self) -> str:
        """The ``init`` column: ``mean``, or ``kmeans-<k>``."""
        return self.init_gen if self.init_gen == "mean" else f"{self.init_gen}-{self.init_k}"


def embedding_dims(section: Mapping[str, Any]) -> tuple[int, ...]:
    """``lowshot.embedding_dim`` (absent, one D or a list of them) as a tuple of Ds."""
    value = section.get("embedding_dim", [])
    return tuple(value) if isinstance(value, list) else (value,)


@dataclass
class LowShotData:
    """What one low-shot job works on. Labels are the dataset's class ids.

    ``scope="head"`` needs ``train_embeddings``/``test_embeddings`` (the FM's cached embeddings
    of the whole splits); ``scope="full"`` and ``imprint_aug`` need ``network`` (images -> FM
    embeddings) and ``train_images``/``test_images`` (indexable, item ``(tensor, label)``,
    preprocessed for the network). ``base_head``: the network's trained cosine classifier over
    ``base_classes`` in that order, or None to train one on the base classes (with an embedding
    layer, if the options ask for one). ``fresh_network``: a callable giving an untrained
    network of the same architecture, for ``all_class_joint`` with ``scope="full"`` and no
    embedding layer. ``base_classes`` may be empty (transfer: every class is novel).
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
    """Every configured method for every n (and every embedding dimension), for one seed: rows
    of (embedding_dim, n_shot, method, epoch, novel_accuracy, all_accuracy); ``epoch`` is None
    for methods that do not train, ``embedding_dim`` None without an embedding layer."""
    import torch

    # One intra-op thread, as for the base CNN (imprint.models.train_base_cnn): the same
    # seed then gives the same bytes whatever the machine's cores.
    previous_threads = torch.get_num_threads()
    from imprint.devices import resolve_device

    device = resolve_device(options.device)
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        rows = []
        for dim in options.embedding_dims or (None,):
            rows += [
                {"embedding_dim": dim, **row}
                for row in _SeedRun(data, options, seed, device, dim).rows()
            ]
        return rows
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
    the embeddings, GEN (``mean``: Qi et al.; ``kmeans``: k proxies per class; ``all``: every
    embedding, the nearest-neighbour classifier), L2-normalise the proxies."""
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


def embedding_layer(in_features: int, dim: int, generator):
    """Qi et al.'s fully connected embedding layer (``in_features`` -> ``dim``), initialised as
    PyTorch initialises ``nn.Linear`` (uniform in ±1/sqrt(in_features)) but from ``generator``,
    so that a seed gives the same layer whatever ran before."""
    import math

    from torch import nn

    layer = nn.Linear(in_features, dim)
    bound = 1 / math.sqrt(in_features)
    for parameter in (layer.weight, layer.bias):
        nn.init.uniform_(parameter, -bound, bound, generator=generator)
    return layer


def optimizer_and_schedule(groups: list[dict[str, Any]], options: LowShotOptions):
    """The optimiser of every training run (SGD or RMSProp, both with momentum) and its
    learning-rate schedule: the rate times ``lr_decay_factor`` every ``lr_decay_epochs`` epochs
    (Qi et al.: 0.94 every 4 epochs), or None without decay."""
    import torch

    o = options
    if o.optimizer == "rmsprop":
        optimiser = torch.optim.RMSprop(
            groups,
            lr=o.learning_rate,
            alpha=o.rmsprop_alpha,
            eps=o.rmsprop_eps,
            momentum=o.momentum,
            weight_decay=o.weight_decay,
        )
    else:
        optimiser = torch.optim.SGD(
            groups, lr=o.learning_rate, momentum=o.momentum, weight_decay=o.weight_decay
        )
    if o.lr_decay_factor == 1:
        return optimiser, None
    schedule = torch.optim.lr_scheduler.StepLR(
        optimiser, step_size=o.lr_decay_epochs, gamma=o.lr_decay_factor
    )
    return optimiser, schedule


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


class _Features:
    """What the base network reads. ``scope="head"``: the FM's cached embeddings (``train_x``,
    ``test_x``), through the trainable network if there is one (the embedding layer);
    ``scope="full"``: images, through the whole network. Either way the FM on images
    (``extractor``) is there for imprint_aug's augmented copies where the data has it."""

    def __init__(self, data: LowShotData, options: LowShotOptions, test_index, device):
        import torch

        self.options, self.device = options, device
        self.head_scope = options.scope == "head"
        if self.head_scope:
            if data.train_embeddings is None or data.test_embeddings is None:
                raise ValueError("scope 'head' needs the train and test embeddings")
            self.train_x = torch.as_tensor(data.train_embeddings, dtype=torch.float32)
            self.test_x = torch.as_tensor(data.test_embeddings[test_index], dtype=torch.float32)
        elif data.network is None or data.train_images is None or data.test_images is None:
            raise ValueError("scope 'full' needs the network and the train and test images")
        self.test_index = test_index
        self.extractor = None if data.network is None else data.network.to(device).eval()
        self.train_images = _in_memory(data.train_images, options.num_workers)
        self.test_images = _in_memory(data.test_images, options.num_workers)

    @functools.cached_property
    def width(self) -> int:
        """The width of what the network reads in head scope, or of the FM's embeddings (one
        image through the FM, once per run)."""
        if self.head_scope:
            return int(self.train_x.shape[1])
        return int(self._embed(self.extractor, self.train_images, np.arange(1)).shape[1])

    def image_network(self, network):
        """The network from images to embeddings: ``network`` itself in full scope, the FM
        followed by ``network`` (the embedding layer) in head scope."""
        from torch import nn

        if not self.head_scope:
            return network
        if self.extractor is None or self.train_images is None:
            raise ValueError("imprint_aug needs the network and the train images")
        return self.extractor if network is None else nn.Sequential(self.extractor, network)

    def _image_batches_of(self, images, index: np.ndarray):
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
            for batch in self._image_batches_of(images, index):
                if generator is not None:
                    batch = augment(batch, self.options.shift, self.options.flip, generator)
                parts.append(network(batch.to(self.device)).float().cpu())
        return torch.cat(parts)

    def train(self, network, index: np.ndarray):
        """Embeddings of train samples by ``network`` (frozen here; in head scope None is the
        identity on the cached embeddings)."""
        import torch

        if not self.head_scope:
            return self._embed(network, self.train_images, index)
        if network is None:
            return self.train_x[index]
        with torch.inference_mode():
            return network(self.train_x[index].to(self.device)).float().cpu()

    def augmented(self, network, index: np.ndarray, generator):
        """Per sample, the mean of the L2-normalised embeddings of ``copies`` augmentations."""
        from torch.nn import functional

        on_images = self.image_network(network)
        copies = [
            functional.normalize(self._embed(on_images, self.train_images, index, generator), dim=1)
            for _ in range(self.options.copies)
        ]
        return sum(copies) / len(copies)

    def test_logits(self, network, head):
        import torch

        with torch.inference_mode():
            if self.head_scope:
                return torch.cat(
                    [
                        head(
                            chunk.to(self.device)
                            if network is None
                            else network(chunk.to(self.device))
                        )
                        for chunk in self.test_x.split(4096)
                    ]
                )
            network.eval()
            return head(self._embed(network, self.test_images, self.test_index).to(self.device))

    def pool(self, index: np.ndarray):
        """A training pool: the cached embeddings at ``index`` (head), or the indices (full)."""
        return self.train_x[index] if self.head_scope else index

    def batches(self, pool, batches: list[np.ndarray], generator) -> Iterator[Any]:
        """The inputs of each batch of pool positions, in order: embeddings sliced from a pool
        of embeddings (a tensor), or the images of a pool of train indices (an array), decoded
        (sliced from memory, or by a DataLoader's ``num_workers`` while the network trains)
        and augmented."""
        from torch.utils.data import DataLoader

        if not isinstance(pool, np.ndarray):
            yield from (pool[batch] for batch in batches)
            return
        index_batches = [pool[batch] for batch in batches]
        if isinstance(self.train_images, _TensorImages):
            images = (_stack(self.train_images, batch) for batch in index_batches)
        else:
            loader = DataLoader(
                self.train_images,
                batch_sampler=[batch.tolist() for batch in index_batches],
                num_workers=self.options.num_workers,
            )
            images = (x for x, _ in loader)
        for x in images:
            yield augment(x, self.options.shift, self.options.flip, generator)


def _parameters(modules) -> list[Any]:
    return [p for module in modules if module is not None for p in module.parameters()]


def _train(
    features: _Features,
    network,
    head,
    pool,
    pool_class: np.ndarray,
    epochs: int,
    generator,
    evaluate: Callable[[int], None] | None,
    *,
    fresh_head: bool,
    new_modules: Sequence[Any] = (),
) -> None:
    """Train ``head`` (and ``network``, if any) on balanced mini-batches of ``pool``,
    evaluating after every epoch. Pretrained weights learn at the learning rate, new ones at
    ``new_weight_multiplier`` times it (Qi et al.: 10x): the novel classes' weights, the whole
    head when ``fresh_head``, and the parameters of ``new_modules`` (parts of ``network``)."""
    import torch
    from torch.nn import functional

    o, device = features.options, features.device
    new_rate = o.learning_rate * o.new_weight_multiplier
    head_rate = new_rate if fresh_head else o.learning_rate
    head_blocks = list(head.blocks)
    groups = [
        {"params": [head.scale], "lr": head_rate, "weight_decay": 0.0},
        {"params": head_blocks[:1], "lr": head_rate},
    ]
    if len(head_blocks) > 1:
        groups.append({"params": head_blocks[1:], "lr": new_rate})
    if network is not None:
        network.requires_grad_(True)
        new = {id(p) for p in _parameters(new_modules)}
        pretrained = [p for p in network.parameters() if id(p) not in new]
        fresh = [p for p in network.parameters() if id(p) in new]
        groups += [
            {"params": params, "lr": rate}
            for params, rate in ((pretrained, o.learning_rate), (fresh, new_rate))
            if params
        ]
    optimiser, schedule = optimizer_and_schedule(groups, o)
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
        inputs = features.batches(pool, batches, generator)
        for batch, x in zip(batches, inputs, strict=True):
            x = x.to(device)
            logits = head(x if network is None else network(x))
            loss = functional.cross_entropy(logits, targets[batch].to(device))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        if schedule is not None:
            schedule.step()
        if evaluate is not None:
            evaluate(epoch)


@dataclass
class Shots:
    """One n of one seed's run, as every method sees it: the novel examples, their imprinted
    weights, the method's own generator and a draw of random novel weights from it."""

    run: _SeedRun
    n: int
    novel_index: np.ndarray
    novel_labels: np.ndarray  # novel class of each example, counted from 0
    features: np.ndarray  # their embeddings by the base network
    weights: np.ndarray  # imprinted novel weights
    proxy_class: np.ndarray  # the novel class of each weight
    generator: Any = None
    random_novel: Any = None

    def evaluated(self, method: str, network, head) -> list[dict[str, Any]]:
        return [self.run.row(self.n, method, None, *self.run.evaluate(network, head))]


class _SeedRun:
    """One seed's run for one embedding dimension: the class maps, the features, the base
    network and head its methods share."""

    def __init__(
        self,
        data: LowShotData,
        options: LowShotOptions,
        seed: int,
        device,
        embedding_dim: int | None = None,
    ):
        import torch

        self.data, self.options, self.seed, self.device = data, options, seed, device
        self.embedding_dim = embedding_dim
        self.classes = [*data.base_classes, *data.novel_classes]
        self.n_base = len(data.base_classes)
        index = {c: i for i, c in enumerate(self.classes)}
        self.train_class = np.array([index.get(int(c), -1) for c in data.train_labels])
        test_class = np.array([index.get(int(c), -1) for c in data.test_labels])
        test_index = np.flatnonzero(test_class >= 0)
        self.test_targets = test_class[test_index]
        self.base_pool = np.flatnonzero((self.train_class >= 0) & (self.train_class < self.n_base))
        self.features = _Features(data, options, test_index, device)
        torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")
        # The FM as loaded, before any base training: where AllClassJoint starts from.
        self.pretrained = self.features.extractor
        if data.base_head is not None and embedding_dim is not None:
            raise ValueError(
                "this model has its own trained classifier (a base_cnn, which has its own "
                "embedding layer): an embedding_dim cannot be added to it"
            )
        self.network = None if self.features.head_scope else self.features.extractor
        if data.base_head is not None:
            self.base_head = data.base_head.to(device)
        else:
            self.base_head = self._train_base_network()

    # -- the base network -------------------------------------------------------------------

    def _new_layer(self, generator):
        """A fresh embedding layer (None without ``embedding_dim``)."""
        if self.embedding_dim is None:
            return None
        return embedding_layer(self.features.width, self.embedding_dim, generator).to(self.device)

    def _train_base_network(self):
        """Where the model has no cosine classifier: one trained on the base classes (from
        random weights, ``base_epochs`` epochs, balanced batches) on the frozen embeddings,
        or with an embedding layer, the layer and the classifier (and, in full scope, the FM
        too: Qi et al.'s base training)."""
        import torch
        from torch import nn

        from imprint.models import cosine_classifier, random_unit_rows

        generator = _run_seed_state(self.seed, 0)
        layer = self._new_layer(generator)
        if layer is not None:
            self.network = (
                layer
                if self.features.head_scope
                else nn.Sequential(copy.deepcopy(self.pretrained), layer)
            )
        if layer is not None:
            network, pool, dim = (
                self.network,
                self.features.pool(self.base_pool),
                layer.out_features,
            )
        elif self.n_base:  # the classifier alone, on frozen embeddings
            network, pool = None, self.features.train(self.network, self.base_pool)
            dim = pool.shape[1]
        else:
            dim = self.features.width
        head = cosine_classifier(
            random_unit_rows(self.n_base, dim, generator), torch.arange(self.n_base), self.n_base
        ).to(self.device)
        if self.n_base == 0:  # transfer: no base class to train on
            return head.eval()
        start = time.perf_counter()
        _train(
            self.features,
            network,
            head,
            pool,
            self.train_class[self.base_pool],
            self.options.base_epochs,
            generator,
            None,
            fresh_head=True,
            new_modules=[layer],
        )
        log.info(
            "base %s trained on %d samples in %.2f s",
            "classifier" if layer is None else f"network (embedding layer {self.embedding_dim}-d)",
            len(self.base_pool),
            time.perf_counter() - start,
        )
        if self.network is not None:
            self.network.eval()
        return head.eval()

    def fresh_network(self, generator) -> tuple[Any, list[Any]]:
        """For AllClassJoint: the base network with every part base training learnt new (a
        fresh embedding layer on the pretrained FM, or a fresh base_cnn), and those parts."""
        from torch import nn

        layer = self._new_layer(generator)
        if layer is not None:
            if self.features.head_scope:
                return layer, [layer]
            return nn.Sequential(copy.deepcopy(self.pretrained), layer), [layer]
        if self.features.head_scope:
            return None, []
        if self.data.fresh_network is None:
            raise ValueError("all_class_joint with scope 'full' needs an untrained network")
        network = self.data.fresh_network().to(self.device)
        return network, [network]

    def imprinted(self, embeddings: np.ndarray, labels: np.ndarray):
        """Novel weights and their classes by imprinting, with the run's init GEN."""
        o = self.options
        return imprinted_weights(embeddings, labels, o.init_gen, o.init_k, self.seed)

    def extended(self, weights, proxy_class):
        import torch

        return self.base_head.extended(
            torch.as_tensor(weights, dtype=torch.float32), proxy_class, len(self.data.novel_classes)
        ).to(self.device)

    # -- evaluation and training --------------------------------------------------------------

    def evaluate(self, network, head) -> tuple[float, float]:
        head.eval()
        if network is not None:
            network.eval()
        logits = self.features.test_logits(network, head)
        return accuracies(logits.argmax(1).cpu().numpy(), self.test_targets, self.n_base)

    def fine_tune(self, shots: Shots, method: str, network, head, *, fresh_head, new_modules):
        """Rows of epochs 0..E of a fine-tuned method (epoch 0: before training)."""
        pool_index = np.concatenate([self.base_pool, shots.novel_index])
        rows = []

        def evaluate(epoch: int) -> None:
            rows.append(self.row(shots.n, method, epoch, *self.evaluate(network, head)))

        evaluate(0)
        start = time.perf_counter()
        # trained from scratch (AllClassJoint) or fine-tuned
        epochs = self.options.joint_epochs if fresh_head else self.options.epochs
        _train(
            self.features,
            network,
            head,
            self.features.pool(pool_index),
            self.train_class[pool_index],
            epochs,
            shots.generator,
            evaluate,
            fresh_head=fresh_head,
            new_modules=new_modules,
        )
        seconds = time.perf_counter() - start
        log.info(
            "n=%d %s: %d epochs in %.2f s (%.3f s/epoch with evaluation); novel %.3f, all %.3f",
            shots.n,
            method,
            epochs,
            seconds,
            seconds / epochs,
            rows[-1]["novel_accuracy"],
            rows[-1]["all_accuracy"],
        )
        return rows

    def row(self, n: int, method: str, epoch: int | None, novel: float, overall: float):
        return {
            "n_shot": n,
            "method": method,
            "epoch": epoch,
            "novel_accuracy": novel,
            "all_accuracy": overall,
        }

    def rows(self) -> list[dict[str, Any]]:
        import torch

        from imprint.models import random_unit_rows

        o = self.options
        novel_sets = novel_examples(
            self.data.train_labels, self.data.novel_classes, o.n_shot, self.seed
        )
        rows: list[dict[str, Any]] = []
        for n in o.n_shot:
            novel_index = novel_sets[n]
            novel_labels = self.train_class[novel_index] - self.n_base
            features = self.features.train(self.network, novel_index).numpy()
            weights, proxy_class = self.imprinted(features, novel_labels)
            # the methods' code runs from here (a whole-module import: imprint.codehash then
            # hashes all of it into the low-shot job, and only the names into figure jobs)
            from imprint import lowshot_methods

            for name, method in lowshot_methods.METHODS.items():
                if name not in o.methods:
                    continue
                generator = _run_seed_state(self.seed, n, method.seed_key)
                torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=generator)))
                shots = Shots(
                    self,
                    n,
                    novel_index,
                    novel_labels,
                    features,
                    weights,
                    proxy_class,
                    generator,
                    random_unit_rows(len(proxy_class), weights.shape[1], generator),
                )
                rows += method.run(shots, name)
            log.info("n=%d done", n)
        return rows


def lowshot_scope(requested: str, model_spec: Mapping[str, Any]) -> str:
    """``lowshot.scope``: ``auto`` fine-tunes the whole network of a ``base_cnn`` (small, and
    trained by the workflow) and only the classifier of any other model."""
    if requested != "auto":
        return requested
    return "full" if model_spec["source"] == "base_cnn" else "head"


def task_base_classes(task_spec: Mapping[str, Any], model_spec: Mapping[str, Any]) -> Any:
    """The base classes of a low-shot task as configured (ids, ``[]`` or a class selector):
    its own, else the ``base_cnn``'s training classes; None where neither says."""
    if "base_classes" in task_spec:
        return task_spec["base_classes"]
    return model_spec.get("base_classes")


def task_classes(
    task_spec: Mapping[str, Any],
    model_spec: Mapping[str, Any],
    available: Sequence[int],
    train_labels: np.ndarray,
) -> tuple[list[int], list[int]]:
    """The (base, novel) class ids of a low-shot task, its class selectors resolved on the
    dataset's classes and train labels (:func:`imprint.tasks.select_classes`)."""
    from imprint.tasks import select_classes

    base, novel = task_base_classes(task_spec, model_spec), task_spec["novel_classes"]
    return (
        select_classes(base, available, train_labels),
        select_classes(novel, available, train_labels),
    )


def task_dataset(task_spec: Mapping[str, Any], model_spec: Mapping[str, Any]) -> str | None:
    """The dataset of a low-shot task: its own, else the one the ``base_cnn`` trained on."""
    return task_spec.get("dataset", model_spec.get("dataset"))


def results_table(rows: Sequence[Mapping[str, Any]], **constants: Any):
    """The rows of :func:`run_seed` as a table with :data:`COLUMNS` (``constants``: model,
    task, seed, scope, init); ``epoch`` and ``embedding_dim`` are nullable integers, empty for
    untrained methods and without an embedding layer."""
    import pandas as pd

    table = pd.DataFrame(list(rows))
    for name, value in constants.items():
        table[name] = value
    for column in ("epoch", "embedding_dim"):
        values = table[column] if column in table else pd.Series(pd.NA, index=table.index)
        table[column] = values.astype("Int64")
    return table[list(COLUMNS)]
