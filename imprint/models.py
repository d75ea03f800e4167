"""Foundation-model (FM) registry: every configured model names a ``source`` registered here.

A source prepares the model once into a file Snakemake tracks (``prepare``), loads from that
file a frozen network that maps a batch of images to embeddings (``load``), and gives the
preprocessing that turns one dataset image (PIL image or float CHW tensor in [0, 1]) into the
network's input (``preprocess``). Sources: ``pixels`` (the raw pixels, flattened), ``base_cnn``
(a small CNN trained by the workflow on a set of base classes, Qi et al.'s base/novel protocol)
and ``torchvision`` (any torchvision classification model, pretrained weights optional).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from imprint.errors import SpecError
from imprint.io import atomic_path

log = logging.getLogger(__name__)


class ModelSource(Protocol):
    """A kind of FM (config key ``source``). Optional attributes, read with defaults:
    ``check(spec)`` raises :class:`imprint.errors.SpecError` for a spec that cannot work, before
    any job (a name the library does not have); ``fine_tunable`` (False): it has a network that
    low-shot ``scope: full`` can train; ``own_embedding_layer`` (False): its network ends in an
    embedding layer of its own (low-shot adds none); ``reads_embeddings`` (False): it reads
    embeddings computed elsewhere, with no network and no images."""

    def training_dataset(self, spec: Mapping[str, Any]) -> str | None:
        """Name of the configured dataset the model is trained on, if any."""

    def prepare(self, spec: Mapping[str, Any], out: Path, training_data, threads: int) -> None:
        """Write the model file ``out``; ``training_data`` is the train-split image dataset."""

    def load(self, spec: Mapping[str, Any], path: Path):
        """The frozen embedding network (a ``torch.nn.Module`` in eval mode)."""

    def preprocess(self, spec: Mapping[str, Any]):
        """Callable: one dataset image -> the network's input tensor."""


def to_tensor(image):
    """A PIL image as a float CHW tensor in [0, 1]; tensors pass through."""
    if hasattr(image, "dim"):
        return image
    # Imported for PIL images only: importing torchvision takes seconds (it loads torch._dynamo),
    # a cost every offline-default job on tensor images would pay for nothing.
    from torchvision.transforms.functional import to_tensor as pil_to_tensor

    return pil_to_tensor(image)


def to_rgb(image):
    """Grayscale (PIL or 1-channel tensor) as 3-channel RGB, for models trained on RGB images."""
    if hasattr(image, "dim"):
        return image.expand(3, *image.shape[1:]) if image.shape[0] == 1 else image
    return image.convert("RGB")


def _save(obj: dict, out: Path) -> None:
    import torch

    # Through a file handle: given a path, torch.save names the archive's top folder after the
    # (random) temporary file name, and equal models would give different bytes.
    with atomic_path(out) as tmp, open(tmp, "wb") as handle:
        torch.save(obj, handle)


def _load(path: Path, source: str) -> dict:
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: model file not found") from None
    except Exception as error:  # torch raises many types for a damaged file
        raise ValueError(f"{path}: not a readable model file ({error})") from error
    if obj.get("source") != source:
        raise ValueError(f"{path}: holds a {obj.get('source')!r} model, expected {source!r}")
    return obj


class RawPixels:
    """The identity FM: an image's flattened pixels are its embedding."""

    def training_dataset(self, spec: Mapping[str, Any]) -> str | None:
        return None

    def prepare(self, spec: Mapping[str, Any], out: Path, training_data, threads: int) -> None:
        _save({"source": "pixels"}, out)

    def load(self, spec: Mapping[str, Any], path: Path):
        from torch import nn

        _load(path, "pixels")
        return nn.Flatten().eval()

    def preprocess(self, spec: Mapping[str, Any]):
        return to_tensor


#: ``base_cnn``'s classifier heads: Qi et al.'s cosine classifier (the default) or a linear layer.
CNN_HEADS = ("cosine", "linear")
#: The cosine classifier's scale factor before training (Qi et al. learn it; 10 lets a softmax
#: over cosines in [-1, 1] become confident from the first epoch).
INITIAL_SCALE = 10.0


@functools.cache
def cosine_classifier_class():
    """Qi et al.'s classifier as an ``nn.Module`` class (built once, on first use: importing
    torch at module import would slow every job that never trains)."""
    import torch
    from torch import nn
    from torch.nn import functional

    class CosineClassifier(nn.Module):
        """``scale * cos(w, x)`` per proxy with a learned ``scale`` and L2-normalised rows ``w``
        and input ``x``; a class with several proxies scores the max over them (AGG max).

        The weights are kept in blocks (``blocks[0]`` the base classes, later blocks appended
        by :meth:`extended`), so that an optimiser can give imprinted weights their own
        learning rate.
        """

        def __init__(self, weights, proxy_class, n_classes: int, scale: float = INITIAL_SCALE):
            super().__init__()
            self.blocks = nn.ParameterList([nn.Parameter(torch.as_tensor(weights).clone())])
            self.register_buffer("proxy_class", torch.as_tensor(proxy_class, dtype=torch.long))
            self.scale = nn.Parameter(torch.tensor(float(scale)))
            self.n_classes = n_classes

        @property
        def weight(self):
            return torch.cat(list(self.blocks)) if len(self.blocks) > 1 else self.blocks[0]

        @property
        def one_proxy_per_class(self) -> bool:
            return len(self.proxy_class) == self.n_classes and bool(
                (self.proxy_class == torch.arange(self.n_classes, device=self.proxy_class.device))
                .all()
                .item()
            )

        def forward(self, x):
            cosines = functional.normalize(x, dim=1) @ functional.normalize(self.weight, dim=1).T
            logits = self.scale * cosines
            if self.one_proxy_per_class:
                return logits
            per_class = logits.new_full((len(x), self.n_classes), float("-inf"))
            index = self.proxy_class.expand(len(x), -1)
            return per_class.scatter_reduce(1, index, logits, reduce="amax")

        def extended(self, weights, proxy_class, n_new_classes: int):
            """A copy with ``weights`` (classes numbered from ``n_new_classes`` on by
            ``proxy_class``, counted from 0) appended as a new block: imprinting."""
            grown = CosineClassifier(
                self.blocks[0].detach(),
                self.proxy_class,
                self.n_classes + n_new_classes,
                float(self.scale.detach()),
            )
            for block in list(self.blocks)[1:]:
                grown.blocks.append(nn.Parameter(block.detach().clone()))
            new = torch.as_tensor(weights, dtype=grown.blocks[0].dtype)
            grown.blocks.append(nn.Parameter(new.clone().to(grown.blocks[0].device)))
            offset = torch.as_tensor(proxy_class, dtype=torch.long).to(self.proxy_class.device)
            grown.proxy_class = torch.cat([self.proxy_class, self.n_classes + offset])
            return grown

    return CosineClassifier


def cosine_classifier(weights, proxy_class, n_classes: int, scale: float = INITIAL_SCALE):
    """A :func:`cosine_classifier_class` instance (see there)."""
    return cosine_classifier_class()(weights, proxy_class, n_classes, scale)


def random_unit_rows(n: int, dim: int, generator) -> Any:
    """``n`` random directions in ``dim`` dimensions (Gaussian rows, L2-normalised): the
    random initialisation of classifier weights."""
    import torch

    rows = torch.randn(n, dim, generator=generator)
    return rows / rows.norm(dim=1, keepdim=True)


def small_cnn(
    in_channels: int, embedding_dim: int, n_classes: int, head: str = "cosine", seed: int = 0
):
    """A small CNN for low-resolution images: conv features -> ``embedding_dim`` -> classifier.

    The embedding is the penultimate layer. With Qi et al.'s :func:`cosine_classifier`
    (``head="cosine"``) it is a linear layer's output, L2-normalised inside the classifier (the
    embedding stage exports it before that normalisation, so IMPRINT's NORM choices still
    apply); not passed through a ReLU, whose non-negative outputs all lie in one orthant, where
    cosines differ little and a small network trains slowly. With a linear head it is after a
    ReLU, like a ResNet's pooled features.
    """
    import torch
    from torch import nn

    if head not in CNN_HEADS:
        raise ValueError(f"unknown head {head!r}; expected one of {CNN_HEADS}")
    features = nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(128, embedding_dim),
    )
    if head == "linear":
        features.append(nn.ReLU())
        return nn.Sequential(features, nn.Linear(embedding_dim, n_classes))
    weights = random_unit_rows(n_classes, embedding_dim, torch.Generator().manual_seed(seed))
    return nn.Sequential(features, cosine_classifier(weights, torch.arange(n_classes), n_classes))


def train_base_cnn(
    training_data,
    base_classes: list[int],
    embedding_dim: int,
    epochs: int,
    learning_rate: float,
    batch_size: int,
    seed: int,
    head: str = "cosine",
) -> tuple[Any, dict[str, Any]]:
    """Train :func:`small_cnn` on the base classes of ``training_data``; the same weights, bit
    for bit, for the same seed on the same software, whatever the machine's cores.

    Returns the network and a training record (per-epoch loss and accuracy).
    """
    import torch

    # One intra-op thread, whatever the job was given: the backward pass sums gradients over
    # the batch in per-thread chunks, so another thread count gives other rounding and other
    # weights (1 thread costs ~25% on the default run's 4 s training: measured).
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_base_cnn(
            training_data,
            base_classes,
            embedding_dim,
            epochs,
            learning_rate,
            batch_size,
            seed,
            head,
        )
    finally:
        torch.set_num_threads(previous_threads)


def _train_base_cnn(
    training_data, base_classes, embedding_dim, epochs, learning_rate, batch_size, seed, head
):
    import torch
    from torch.utils.data import DataLoader, Subset

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    labels = np.asarray([int(label) for _, label in training_data])
    chosen = np.flatnonzero(np.isin(labels, base_classes))
    if len(chosen) == 0:
        raise ValueError(f"no training images of base classes {base_classes}")
    relabel = {c: i for i, c in enumerate(base_classes)}
    targets = torch.as_tensor([relabel[int(c)] for c in labels[chosen]])
    subset = Subset(training_data, chosen.tolist())
    in_channels = subset[0][0].shape[0]
    network = small_cnn(in_channels, embedding_dim, len(base_classes), head, seed)
    optimiser = torch.optim.Adam(network.parameters(), lr=learning_rate, weight_decay=5e-4)
    order = torch.Generator().manual_seed(seed)
    loader = DataLoader(range(len(subset)), batch_size=batch_size, shuffle=True, generator=order)
    images = torch.stack([subset[i][0] for i in range(len(subset))])
    history = []
    for epoch in range(epochs):
        network.train()
        total_loss, correct = 0.0, 0
        for batch in loader:
            logits = network(images[batch])
            loss = torch.nn.functional.cross_entropy(logits, targets[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total_loss += loss.item() * len(batch)
            correct += int((logits.argmax(1) == targets[batch]).sum())
        history.append(
            {
                "epoch": epoch + 1,
                "loss": total_loss / len(subset),
                "train_accuracy": correct / len(subset),
            }
        )
        log.info(
            "epoch %d: loss %.4f, train accuracy %.4f",
            epoch + 1,
            history[-1]["loss"],
            history[-1]["train_accuracy"],
        )
    network.eval()
    with torch.inference_mode():
        final_accuracy = float((network(images).argmax(1) == targets).float().mean())
    return network, {
        "history": history,
        "train_accuracy": final_accuracy,
        "in_channels": in_channels,
        "n_train": len(subset),
    }


class BaseCNN:
    """A small CNN trained by the workflow on the configured base classes of a dataset.

    Tasks on its base classes show a collapsed FM; tasks on the other (novel) classes show what
    imprinting does on data the FM was not trained on.
    """

    fine_tunable = True
    own_embedding_layer = True

    def training_dataset(self, spec: Mapping[str, Any]) -> str | None:
        return spec["dataset"]

    def prepare(self, spec: Mapping[str, Any], out: Path, training_data, threads: int) -> None:
        network, record = train_base_cnn(
            training_data,
            base_classes=list(spec["base_classes"]),
            embedding_dim=spec["embedding_dim"],
            epochs=spec["epochs"],
            learning_rate=spec["learning_rate"],
            batch_size=spec["batch_size"],
            seed=spec["seed"],
            head=spec.get("head", BASE_CNN_DEFAULTS["head"]),
        )
        if record["train_accuracy"] < 0.99:
            log.warning(
                "the base CNN fits its base classes only to %.3f train accuracy; raise 'epochs'",
                record["train_accuracy"],
            )
        _save({"source": "base_cnn", "state_dict": network.state_dict(), **record}, out)

    def load(self, spec: Mapping[str, Any], path: Path):
        return self.load_with_head(spec, path)[0].eval()  # without the head: the embedding

    def load_with_head(self, spec: Mapping[str, Any], path: Path):
        """The trained network, classifier included (``[0]`` the embedding, ``[1]`` the head)."""
        obj = _load(path, "base_cnn")
        network = small_cnn(
            obj["in_channels"],
            spec["embedding_dim"],
            len(spec["base_classes"]),
            spec.get("head", BASE_CNN_DEFAULTS["head"]),
        )
        network.load_state_dict(obj["state_dict"])
        return network.eval()

    def preprocess(self, spec: Mapping[str, Any]):
        return to_tensor


def strip_classifier(network):
    """Replace the network's last ``nn.Linear`` (its classification head) with ``nn.Identity``,
    so that the penultimate embedding comes out: resnet ``fc`` (512/2048-d), vit ``heads.head``
    (768-d), swin ``head`` (1024-d), efficientnet/convnext/mobilenet ``classifier[-1]``."""
    from torch import nn

    linear = [name for name, module in network.named_modules() if isinstance(module, nn.Linear)]
    if not linear:
        raise ValueError(f"{type(network).__name__} has no linear classification head to remove")
    *parents, last = linear[-1].split(".")
    owner = network.get_submodule(".".join(parents)) if parents else network
    setattr(owner, last, nn.Identity())
    return network


class TorchvisionModel:
    """A torchvision classification model by name (``torchvision.models.get_model``).

    ``weights``: a weights enum name such as ``IMAGENET1K_V1``, ``DEFAULT``, or null for random
    initialisation (offline tests of the plumbing). Preprocessing is the weights' own transforms
    (for null weights, those of the model's default weights), after grayscale -> RGB.
    """

    fine_tunable = True

    def check(self, spec: Mapping[str, Any]) -> None:
        """The model name and its weights exist in this torchvision."""
        from torchvision.models import get_model_weights, list_models

        if spec["name"] not in list_models():
            raise SpecError("name", f"torchvision has no model {spec['name']!r}")
        if spec["weights"] is not None:
            enum = get_model_weights(spec["name"])
            if spec["weights"] not in enum.__members__:
                raise SpecError(
                    "weights",
                    f"{spec['weights']!r} is not one of {sorted(enum.__members__)} or null",
                )

    def training_dataset(self, spec: Mapping[str, Any]) -> str | None:
        return None

    def _weights(self, spec: Mapping[str, Any]):
        from torchvision.models import get_model_weights

        enum = get_model_weights(spec["name"])
        return None if spec["weights"] is None else enum[spec["weights"]]

    def prepare(self, spec: Mapping[str, Any], out: Path, training_data, threads: int) -> None:
        import torch
        from torchvision.models import get_model

        torch.manual_seed(0)  # random weights (weights: null) are the same on every run
        if spec.get("checkpoint"):
            network = get_model(spec["name"], weights=None)
            try:
                network.load_state_dict(_read_checkpoint(spec["checkpoint"]))
            except RuntimeError as error:  # missing or unexpected keys, wrong shapes
                raise ValueError(
                    f"{spec['checkpoint']}: not a {spec['name']} checkpoint "
                    f"({str(error).splitlines()[0]})"
                ) from None
            self._save(spec, network, out)
            return
        weights = self._weights(spec)
        try:
            network = get_model(spec["name"], weights=weights)
        except Exception as error:  # URLError, HTTPError, RuntimeError (hash): not obtainable
            checkpoint = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
            raise FileNotFoundError(
                f"could not obtain the {weights} weights of {spec['name']}: {error}\n"
                f"Without internet access, put {weights.url}\nat {checkpoint}\n(or set TORCH_HOME "
                "to a folder whose hub/checkpoints/ holds it), then rerun."
            ) from error
        self._save(spec, network, out)

    def _network(self, network, spec: Mapping[str, Any]):
        """The embedding network: the named layer's output, else the penultimate one."""
        return _with_layer(network, spec) if spec.get("layer") else strip_classifier(network)

    def _save(self, spec: Mapping[str, Any], network, out: Path) -> None:
        _save(
            {
                "source": "torchvision",
                "name": spec["name"],
                "weights": spec["weights"],
                "state_dict": self._network(network, spec).state_dict(),
            },
            out,
        )

    def load(self, spec: Mapping[str, Any], path: Path):
        from torchvision.models import get_model

        obj = _load(path, "torchvision")
        network = self._network(get_model(spec["name"], weights=None), spec)
        network.load_state_dict(obj["state_dict"])
        return network.eval()

    def preprocess(self, spec: Mapping[str, Any]):
        from torchvision.models import get_model_weights

        weights = self._weights(spec) or get_model_weights(spec["name"]).DEFAULT
        return _Preprocess(weights.transforms())


def _read_checkpoint(path: str | Path) -> dict:
    """A state dict from a local weights file: ``.safetensors``, or a torch ``.pth``/``.pt``/
    ``.bin`` holding the state dict itself or under ``state_dict`` / ``model``."""
    import torch

    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint file not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: holds a {type(state).__name__}, not a state dict")
    return state


class _StopForward(Exception):
    """Raised by the layer hook: the rest of the network is not needed."""


def layer_embedding(network, layer: str):
    """A network whose output is that of its module named ``layer``, globally average-pooled to
    a vector: over H and W for ``[N, C, H, W]`` feature maps, over tokens for ``[N, T, C]``
    sequences. The forward pass stops at that module. (A forward hook rather than torchvision's
    ``create_feature_extractor`` or timm's feature API: it works alike for every source,
    including networks that torch.fx cannot trace.)"""
    from torch import nn

    names = [name for name, _ in network.named_modules() if name]
    if layer not in names:
        import difflib

        nearest = difflib.get_close_matches(layer, names, n=5, cutoff=0.4) or names[:5]
        raise ValueError(
            f"layer {layer!r} does not exist in {type(network).__name__}; nearest module "
            f"names: {nearest}"
        )

    class _Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.network = network
            self.layer = layer
            self._captured = None
            network.get_submodule(layer).register_forward_hook(self._capture)

        def _capture(self, module, inputs, output):
            self._captured = output[0] if isinstance(output, tuple) else output
            raise _StopForward

        def forward(self, x):
            try:
                self.network(x)
            except _StopForward:
                pass
            out, self._captured = self._captured, None
            if out.dim() == 4:
                return out.mean(dim=(2, 3))
            if out.dim() == 3:
                return out.mean(dim=1)
            return out.flatten(1)

    return _Layer().eval()


def _with_layer(network, spec: Mapping[str, Any]):
    layer = spec.get("layer")
    return layer_embedding(network, layer) if layer else network


class _Preprocess:
    """RGB conversion, then a model's own transforms (picklable, for DataLoader workers)."""

    def __init__(self, transforms):
        self.transforms = transforms

    def __call__(self, image):
        return self.transforms(to_rgb(image))


class TimmModel:
    """A timm model by ``name``: pooled features (``num_classes=0``), preprocessing from timm's
    data config of the model (``resolve_data_config`` / ``create_transform``; ``image_size``
    overrides its input size). ``pretrained`` weights come from the Hugging Face hub (cache
    first, so an offline machine with the weights in its cache works), or from ``checkpoint``,
    a local ``.safetensors`` / ``.pth`` / ``.bin`` file."""

    fine_tunable = True

    def check(self, spec: Mapping[str, Any]) -> None:
        """timm is installed and has the model."""
        try:
            import timm
        except ImportError:
            raise SpecError(
                "source", "'timm' needs the timm package: pip install 'imprint-workflow[timm]'"
            ) from None
        if not timm.is_model(spec["name"]):
            import difflib

            nearest = difflib.get_close_matches(spec["name"], timm.list_models(), n=3)
            raise SpecError("name", f"timm has no model {spec['name']!r} (nearest: {nearest})")

    def training_dataset(self, spec: Mapping[str, Any]) -> str | None:
        return None

    def _create(self, spec: Mapping[str, Any], pretrained: bool):
        import timm

        if not timm.is_model(spec["name"]):
            raise ValueError(f"timm has no model {spec['name']!r}")
        overlay = (
            {"file": str(Path(spec["checkpoint"]).expanduser())} if spec.get("checkpoint") else None
        )
        return timm.create_model(
            spec["name"], pretrained=pretrained, num_classes=0, pretrained_cfg_overlay=overlay
        )

    def prepare(self, spec: Mapping[str, Any], out: Path, training_data, threads: int) -> None:
        import torch

        pretrained = spec["pretrained"] or bool(spec.get("checkpoint"))
        torch.manual_seed(0)  # random weights (pretrained: false) are the same on every run
        try:
            network = self._create(spec, pretrained)
        except (OSError, RuntimeError) as error:  # hub unreachable, file missing or damaged
            raise FileNotFoundError(self._unavailable(spec, error)) from error
        network = _with_layer(network, spec)  # a bad layer name fails here, in the model job
        _save({"source": "timm", "name": spec["name"], "state_dict": network.state_dict()}, out)

    @staticmethod
    def _unavailable(spec, error) -> str:
        from huggingface_hub.constants import HF_HUB_CACHE
        from timm.models import get_pretrained_cfg

        if spec.get("checkpoint"):
            return (
                f"could not load checkpoint {spec['checkpoint']} into timm {spec['name']}: {error}"
            )
        cfg = get_pretrained_cfg(spec["name"])
        hub = getattr(cfg, "hf_hub_id", None) or spec["name"]
        return (
            f"could not obtain the pretrained weights of timm {spec['name']} ({hub}): "
            f"{error}\nWithout internet access, put them into the Hugging Face cache at "
            f"{HF_HUB_CACHE} (for example with `huggingface-cli download {hub}` on a "
            "machine that has access, then copy the cache), or set `checkpoint:` to a "
            "local weights file; then rerun."
        )

    def load(self, spec: Mapping[str, Any], path: Path):
        obj = _load(path, "timm")
        network = _with_layer(self._create({**spec, "checkpoint": None}, pretrained=False), spec)
        network.load_state_dict(obj["state_dict"])
        return network.eval()

    def preprocess(self, spec: Mapping[str, Any]):
        import timm.data

        network = self._create({**spec, "checkpoint": None}, pretrained=False)
        overrides = (
            {"input_size": (3, spec["image_size"], spec["image_size"])}
            if spec.get("image_size")
            else {}
        )
        config = timm.data.resolve_data_config(overrides, model=network)
        return _Preprocess(timm.data.create_transform(**config))


#: ImageNet's channel means and standard deviations: the default normalisation of ``python``
#: models, which most pretrained image networks expect.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Fallbacks for specs built without the schema (the `imprint` command's): the schema's own
#: defaults, which tests/test_lists_agree.py checks these against.
PYTHON_MODEL_DEFAULTS = {"image_size": 224, "mean": IMAGENET_MEAN, "std": IMAGENET_STD}
BASE_CNN_DEFAULTS = {"head": "cosine"}


def call_factory(spec: Mapping[str, Any]):
    """The network (and the preprocessing, if the factory returns a pair) of a ``python``
    model: ``factory`` is ``package.module:function``, called with ``kwargs``."""
    import json

    return _call_factory(spec["factory"], json.dumps(spec.get("kwargs", {}), sort_keys=True))


@functools.lru_cache(maxsize=4)  # load() and preprocess() of one job share one call
def _call_factory(factory: str, kwargs_json: str):
    import importlib
    import json

    from torch import nn

    module_name, _, function = factory.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(
            f"model factory {factory!r}: cannot import {module_name!r} ({error})"
        ) from None
    if not callable(getattr(module, function, None)):
        raise ValueError(f"model factory {factory!r}: {module_name} has no callable {function!r}")
    import torch

    torch.manual_seed(0)  # a factory's random initialisation is the same on every run
    result = getattr(module, function)(**json.loads(kwargs_json))
    network, transform = result if isinstance(result, tuple) else (result, None)
    if not isinstance(network, nn.Module):
        raise ValueError(
            f"model factory {factory!r} returned a {type(network).__name__}, not a torch.nn.Module"
        )
    return network, transform


class PythonModel:
    """Any PyTorch network from a user's function: ``factory: package.module:function`` called
    with ``kwargs``, returning the frozen network (whose output is the embedding) or a pair
    (network, preprocessing). Without its own preprocessing, images become RGB, ``image_size``
    squared, normalised with ``mean`` and ``std`` (ImageNet's by default). The factory runs in
    the model job (its weights are stored there) and again in each embedding job."""

    fine_tunable = True

    def training_dataset(self, spec: Mapping[str, Any]) -> str | None:
        return None

    def prepare(self, spec: Mapping[str, Any], out: Path, training_data, threads: int) -> None:
        network = _with_layer(call_factory(spec)[0], spec)
        _save(
            {"source": "python", "factory": spec["factory"], "state_dict": network.state_dict()},
            out,
        )

    def load(self, spec: Mapping[str, Any], path: Path):
        obj = _load(path, "python")
        network = _with_layer(call_factory(spec)[0], spec)
        network.load_state_dict(obj["state_dict"])
        return network.eval()

    def preprocess(self, spec: Mapping[str, Any]):
        transform = call_factory(spec)[1]
        if transform is not None:
            return transform
        import torch
        from torchvision.transforms import v2

        size = spec.get("image_size", PYTHON_MODEL_DEFAULTS["image_size"])
        return v2.Compose(
            [
                v2.ToImage(),
                v2.RGB(),
                v2.Resize((size, size), antialias=True),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(
                    list(spec.get("mean", PYTHON_MODEL_DEFAULTS["mean"])),
                    list(spec.get("std", PYTHON_MODEL_DEFAULTS["std"])),
                ),
            ]
        )


class PrecomputedModel:
    """Embeddings computed elsewhere: the embedding job only reads this model's arrays from a
    dataset of source ``embeddings`` (:class:`imprint.datasets.PrecomputedEmbeddings`, which
    checked them). Used with such datasets only."""

    reads_embeddings = True

    def training_dataset(self, spec: Mapping[str, Any]) -> str | None:
        return None

    def prepare(self, spec: Mapping[str, Any], out: Path, training_data, threads: int) -> None:
        _save({"source": "precomputed"}, out)

    def load(self, spec: Mapping[str, Any], path: Path):
        _load(path, "precomputed")
        return None

    def preprocess(self, spec: Mapping[str, Any]):
        return None


MODEL_SOURCES: dict[str, ModelSource] = {
    "pixels": RawPixels(),
    "base_cnn": BaseCNN(),
    "torchvision": TorchvisionModel(),
    "timm": TimmModel(),
    "python": PythonModel(),
    "precomputed": PrecomputedModel(),
}


def model_input_files(spec: Mapping[str, Any]) -> list[str]:
    """Local files a model is made from (its ``checkpoint``): tracked, so that changing the
    file reruns the model and its embeddings."""
    return [str(Path(spec["checkpoint"]).expanduser())] if spec.get("checkpoint") else []


def model_source(spec: Mapping[str, Any]) -> ModelSource:
    try:
        return MODEL_SOURCES[spec["source"]]
    except KeyError:
        raise ValueError(
            f"unknown model source {spec.get('source')!r}; known: {sorted(MODEL_SOURCES)}"
        ) from None
