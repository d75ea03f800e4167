"""Dataset registry: every configured dataset names a ``source`` registered here.

A source knows which class ids it has, how to obtain its files into a cache folder (once, with
checksums recorded in a manifest that is verified on every read), and how to open a split as
labels (cheap, for task construction) or as images (for embedding extraction). Images come out
as PIL images or float CHW tensors in [0, 1]; the model's own preprocessing takes it from there.

Sources: ``sklearn_digits`` (offline, ships with scikit-learn), ``torchvision`` (MNIST,
FashionMNIST, CIFAR10, SVHN, USPS: downloaded by torchvision, md5-checked), ``mnist_m`` (Ganin &
Lempitsky's release, from a folder), ``imagenet_val`` (ImageNet-1K validation from its tarballs),
``image_folder`` (any class-per-folder tree of the user's), ``cub200`` (CUB-200-2011, the official
split, optionally cropped to the birds' boxes), ``inaturalist`` (iNaturalist 2017-2021, the
competitions' splits) and ``combine`` (several configured digit datasets pooled, e.g.
CombiDigits).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from imprint.images import IMAGE_EXTENSIONS, unreadable_images
from imprint.io import load_arrays, read_manifest, save_arrays, write_manifest

SPLITS = ("train", "test")
MANIFEST = "manifest.json"
log = logging.getLogger(__name__)


class DatasetUnavailable(FileNotFoundError):
    """The data is not on disk and cannot be downloaded; the message says what to put where."""


#: Called by ``combine`` to open another configured dataset: name -> (spec, manifest path).
Resolver = Callable[[str], tuple[Mapping[str, Any], Path]]


class DatasetSource(Protocol):
    def class_ids(self, spec: Mapping[str, Any]) -> list[int] | None:
        """The class ids, if known without the data (None: checked when the data is there)."""

    def requires(self, spec: Mapping[str, Any]) -> list[str]:
        """Names of other configured datasets this one is built from."""

    def prepare(self, spec: Mapping[str, Any], root: Path, resolve: Resolver) -> None:
        """Obtain the data into ``root`` and write ``root/manifest.json`` last."""

    def labels(self, spec: Mapping[str, Any], root: Path, split: str) -> np.ndarray:
        """The labels of a split, in dataset order."""

    def images(self, spec: Mapping[str, Any], root: Path, split: str, transform=None):
        """A ``torch.utils.data.Dataset`` of ``(transform(image), label)`` pairs."""


class _Transformed:
    """A dataset whose images pass through ``transform`` (picklable, for DataLoader workers)."""

    def __init__(self, base, transform):
        self.base, self.transform = base, transform

    def __len__(self):
        return len(self.base)

    def __getitem__(self, index):
        image, label = self.base[index]
        return (image if self.transform is None else self.transform(image)), label


class _ArrayImages:
    """uint8 images ``[N, C, H, W]`` as float tensors in [0, 1]."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, scale: float):
        self.images, self.labels, self.scale = images, labels, scale

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        import torch

        return torch.from_numpy(self.images[index].astype(np.float32) / self.scale), int(
            self.labels[index]
        )


class _ArraySource:
    """Shared by sources that cache their splits as arrays (``images``, ``labels``, ``scale``)."""

    def requires(self, spec):
        return []

    def labels(self, spec, root, split):
        return load_arrays(root / f"{split}.npz")["labels"]

    def images(self, spec, root, split, transform=None):
        data = load_arrays(root / f"{split}.npz")
        return _Transformed(
            _ArrayImages(data["images"], data["labels"], float(data["scale"])), transform
        )

    def _write(
        self,
        root: Path,
        splits: Mapping[str, tuple[np.ndarray, np.ndarray]],
        scale: float,
        info: Mapping[str, Any],
    ) -> None:
        for split, (images, labels) in splits.items():
            save_arrays(
                root / f"{split}.npz",
                images=images,
                labels=labels.astype(np.int64),
                scale=np.float32(scale),
            )
        write_manifest(root / MANIFEST, [f"{s}.npz" for s in splits], info)


def _stratified_split(labels: np.ndarray, test_size: float, seed: int):
    from sklearn.model_selection import train_test_split

    return train_test_split(
        np.arange(len(labels)), test_size=test_size, random_state=seed, stratify=labels
    )


class SklearnDigits(_ArraySource):
    """scikit-learn's 8×8 handwritten digits (1797 images, 10 classes), shipped with the package.

    Split once into train/test, stratified by class, with ``test_size`` and ``split_seed``.
    """

    def class_ids(self, spec):
        return list(range(10))

    def _split(self, spec):
        from sklearn.datasets import load_digits

        digits = load_digits()
        train, test = _stratified_split(digits.target, spec["test_size"], spec["split_seed"])
        return digits, train, test

    def known_train_labels(self, spec) -> np.ndarray:
        """The train labels, without writing anything (cheap: the data ships with sklearn)."""
        digits, train, _ = self._split(spec)
        return digits.target[train]

    def prepare(self, spec, root, resolve):
        digits, train, test = self._split(spec)
        images = digits.images.astype(np.uint8)[:, None]  # [N, 1, 8, 8], values 0..16
        self._write(
            root,
            {
                "train": (images[train], digits.target[train]),
                "test": (images[test], digits.target[test]),
            },
            scale=16.0,
            info={"source": "sklearn_digits"},
        )


class TorchvisionDataset:
    """A torchvision dataset by name, downloaded with ``download=True`` (md5-checked by
    torchvision) into the cache folder. Images are PIL images, grayscale for MNIST, FashionMNIST
    and USPS (models that need RGB convert them)."""

    # name -> (files torchvision needs, relative to the cache folder, for the offline message)
    FILES = {
        "MNIST": [
            "MNIST/raw/train-images-idx3-ubyte.gz",
            "MNIST/raw/train-labels-idx1-ubyte.gz",
            "MNIST/raw/t10k-images-idx3-ubyte.gz",
            "MNIST/raw/t10k-labels-idx1-ubyte.gz",
        ],
        "FashionMNIST": [
            f"FashionMNIST/raw/{f}"
            for f in (
                "train-images-idx3-ubyte.gz",
                "train-labels-idx1-ubyte.gz",
                "t10k-images-idx3-ubyte.gz",
                "t10k-labels-idx1-ubyte.gz",
            )
        ],
        "CIFAR10": ["cifar-10-python.tar.gz"],
        "SVHN": ["train_32x32.mat", "test_32x32.mat"],
        "USPS": ["usps.bz2", "usps.t.bz2"],
    }

    def class_ids(self, spec):
        return list(range(10))

    def requires(self, spec):
        return []

    def _open(self, spec, root: Path, split: str, download: bool, transform=None):
        from torchvision import datasets

        name = spec["name"]
        cls = getattr(datasets, name)
        split_args = {"split": split} if name == "SVHN" else {"train": split == "train"}
        return cls(root=str(root), download=download, transform=transform, **split_args)

    def prepare(self, spec, root, resolve):
        name = spec["name"]
        for split in SPLITS:
            try:
                self._open(spec, root, split, download=True)
            except Exception as error:  # URLError, RuntimeError, ...: all mean "not obtainable"
                files = "\n  ".join(str(root / f) for f in self.FILES[name])
                raise DatasetUnavailable(
                    f"could not obtain torchvision {name} ({split} split): {error}\n"
                    f"Without internet access, put the files torchvision downloads here:\n  "
                    f"{files}\n(torchvision checks their md5; then rerun.)"
                ) from error
        files = [
            str(p.relative_to(root))
            for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != MANIFEST
        ]
        write_manifest(root / MANIFEST, files, {"source": "torchvision", "name": name})

    def labels(self, spec, root, split):
        dataset = self._open(spec, root, split, download=False)
        for attribute in ("targets", "labels"):
            if hasattr(dataset, attribute):
                return np.asarray(getattr(dataset, attribute), dtype=np.int64)
        raise AssertionError(spec["name"])

    def images(self, spec, root, split, transform=None):
        return self._open(spec, root, split, download=False, transform=transform)


class _ListedImages:
    """Images from a list of ``(path, label)`` pairs, opened as RGB PIL images."""

    def __init__(self, samples: list[tuple[str, int]]):
        self.samples = samples

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        from torchvision.datasets.folder import default_loader  # PIL, converted to RGB

        path, label = self.samples[index]
        return default_loader(path), label


class _FolderSource:
    """Sources that read image files listed in ``root/<split>.json`` (``[[path, label], ...]``).

    The manifest holds a hash of the listing (paths and sizes) of folders outside the cache, so
    that hashing gigabytes of images on every read is avoided but a changed folder is caught.
    """

    def requires(self, spec):
        return []

    @staticmethod
    def _listing_digest(samples: list[tuple[str, int]]) -> str:
        digest = hashlib.sha256()
        for path, label in samples:
            try:
                size = Path(path).stat().st_size
            except FileNotFoundError:
                size = -1
            digest.update(f"{path}\t{label}\t{size}\n".encode())
        return digest.hexdigest()

    def _write_listing(
        self, root: Path, splits: Mapping[str, list[tuple[str, int]]], info: Mapping[str, Any]
    ) -> None:
        for split, samples in splits.items():
            (root / f"{split}.json").write_text(json.dumps(samples))
        digests = {split: self._listing_digest(samples) for split, samples in splits.items()}
        write_manifest(
            root / MANIFEST,
            [f"{s}.json" for s in splits],
            {**info, "images_listing_sha256": digests},
        )

    def _samples(self, root: Path, split: str) -> list[tuple[str, int]]:
        samples = [
            (path, int(label)) for path, label in json.loads((root / f"{split}.json").read_text())
        ]
        expected = read_manifest(root / MANIFEST, verify=False)["images_listing_sha256"][split]
        if self._listing_digest(samples) != expected:
            raise ValueError(
                f"the {split} images listed in {root / f'{split}.json'} changed (a file was "
                f"removed, added or rewritten) since {root / MANIFEST} was made; delete "
                f"{root} and rerun to list them again"
            )
        return samples

    def labels(self, spec, root, split):
        return np.asarray([label for _, label in self._samples(root, split)], dtype=np.int64)

    def images(self, spec, root, split, transform=None):
        return _Transformed(_ListedImages(self._samples(root, split)), transform)


@dataclass(frozen=True)
class FolderScan:
    """What an image folder of one split holds, as the ``image_folder`` source reads it."""

    classes: list[str]  # sorted sub-folder names, as torchvision's ImageFolder
    samples: list[tuple[str, int]]  # (resolved image path, class index) it reads
    unreadable: list[tuple[str, str]]  # (path, why) of image files PIL cannot open
    other_files: list[str]  # files without an image extension, left out


def scan_image_folder(folder: Path, skip_unreadable: bool, checked_file: Path | None = None):
    """The classes and images of one class-per-folder tree, each image file checked to open
    (``images.unreadable_images``; verdicts kept in ``checked_file`` by path, size and
    modification time, so that a folder is read once, not at every DAG build). With
    ``skip_unreadable`` the files that cannot be read are left out of ``samples`` (and listed
    in ``unreadable``); without it they stay in and the caller refuses the folder."""
    found, classes = [], _class_folder_names(folder)
    for index, name in enumerate(classes):
        found += [(path, index) for path in _image_files_under(folder / name)]
    listed = {path for path, _ in found}
    other_files = sorted(
        str(Path(root, name))
        for root, _, names in os.walk(folder, followlinks=True)
        for name in names
        if str(Path(root, name)) not in listed
    )
    verdicts = _image_verdicts([path for path, _ in found], checked_file)
    unreadable = [(path, verdicts[path]) for path, _ in found if verdicts[path]]
    bad = {path for path, _ in unreadable}
    samples = [
        (str(Path(path).resolve()), int(label))
        for path, label in found
        if not (skip_unreadable and path in bad)
    ]
    return FolderScan(classes, samples, unreadable, other_files)


# torchvision's ImageFolder listing (find_classes, make_dataset), by hand in a few lines:
# importing torchvision takes 2.4 s, which every DAG build would pay for this check alone.
def _class_folder_names(folder: Path) -> list[str]:
    """Sorted names of the sub-folders, as ``torchvision.datasets.folder.find_classes``."""
    return sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())


def _image_files_under(folder: Path) -> list[str]:
    """Image files (by extension) under ``folder``, in ``make_dataset``'s order: walked with
    links followed, folders sorted, file names sorted within each."""
    return [
        os.path.join(root, name)
        for root, _, names in sorted(os.walk(folder, followlinks=True))
        for name in sorted(names)
        if name.lower().endswith(IMAGE_EXTENSIONS)
    ]


#: path -> [size, mtime_ns, why it cannot be opened or ''], for this process (a DAG build
#: lists a folder for its checks and again for the task checks).
_CHECKED_IMAGES: dict[str, list] = {}


def _image_verdicts(paths: list[str], checked_file: Path | None) -> dict[str, str]:
    """Path -> why PIL cannot open it ('' where it can), from ``checked_file`` for the files
    whose size and modification time it recorded."""
    from imprint.io import atomic_path

    known = dict(_CHECKED_IMAGES)
    if checked_file is not None and checked_file.exists():
        with contextlib.suppress(ValueError, OSError):
            known |= json.loads(checked_file.read_text())
    stamps = {}
    for path in paths:
        stat = os.stat(path)
        stamps[path] = [stat.st_size, stat.st_mtime_ns]
    todo = [p for p in paths if known.get(p, [None, None, None])[:2] != stamps[p]]
    found = dict(unreadable_images([Path(p) for p in todo]))
    for path in todo:
        known[path] = [*stamps[path], found.get(Path(path), "")]
    _CHECKED_IMAGES.update({path: known[path] for path in paths})
    if checked_file is not None and todo:
        with atomic_path(checked_file) as tmp:
            tmp.write_text(json.dumps({p: known[p] for p in paths}))
    return {path: known[path][2] for path in paths}


def _split_samples(samples, test_size, seed):
    labels = np.asarray([label for _, label in samples])
    train, test = _stratified_split(labels, test_size, seed)
    return [samples[i] for i in sorted(train)], [samples[i] for i in sorted(test)]


class ImageFolderDataset(_FolderSource):
    """The user's own images: one sub-folder per class (``torchvision.datasets.ImageFolder``).

    ``train`` (and optionally ``test``) name folders; without ``test``, ``train`` is split
    stratified by ``test_size`` and ``split_seed``. Class ids are the sorted folder names' indices.
    Files PIL cannot open stop the run before any job (:meth:`check`), or, with
    ``skip_unreadable``, are left out and listed.
    """

    def class_ids(self, spec):
        return None

    def named_paths(self, spec) -> dict[str, str]:
        return {split: spec[split] for split in SPLITS if split in spec}

    def splits(
        self, spec, key: str = "datasets.<name>", checked_folder: Path | None = None
    ) -> tuple[list[str], dict[str, list[tuple[str, int]]], list[str]]:
        """Classes, the train and test samples, and notes (files left out): what the dataset
        job lists, checked as :meth:`check` describes. Raises ``ValueError`` naming ``key``."""
        folders = {s: Path(spec[s]).expanduser() for s in SPLITS if s in spec}
        notes, scans = [], {}
        for split, folder in folders.items():
            where = f"config key '{key}.{split}'"
            if not folder.is_dir():
                raise DatasetUnavailable(
                    f"{where}: folder {folder} does not exist; it should hold one sub-folder "
                    "of images per class"
                )
            scan = scan_image_folder(
                folder,
                spec.get("skip_unreadable", False),
                checked_folder / f"images_checked_{split}.json" if checked_folder else None,
            )
            if len(scan.classes) < 2:
                raise ValueError(
                    f"{where}: {folder} holds {len(scan.classes)} class folder(s) "
                    f"{scan.classes}; a classifier needs at least two (one sub-folder of "
                    "images per class)"
                )
            if scan.unreadable and not spec.get("skip_unreadable", False):
                path, why = scan.unreadable[0]
                raise ValueError(
                    f"{where}: {len(scan.unreadable)} image file(s) cannot be read, e.g. "
                    f"{path} ({why}); replace or remove them, or set "
                    f"'{key}.skip_unreadable: true' to leave them out (each is listed)"
                )
            counts = np.bincount([label for _, label in scan.samples], minlength=len(scan.classes))
            if (counts == 0).any():
                empty = scan.classes[int(np.flatnonzero(counts == 0)[0])]
                raise ValueError(
                    f"{where}: class folder {folder / empty} holds no readable images "
                    f"(extensions {', '.join(sorted(IMAGE_EXTENSIONS))})"
                )
            notes += [
                f"{where}: left out (cannot be read): {path} ({why})"
                for path, why in scan.unreadable
            ]
            if scan.other_files:
                shown = ", ".join(scan.other_files[:3])
                more = len(scan.other_files) - 3
                notes.append(
                    f"{where}: {len(scan.other_files)} file(s) without an image extension "
                    f"left out: {shown}{f' and {more} more' if more > 0 else ''}"
                )
            scans[split] = scan
        classes = scans["train"].classes
        if "test" in scans:
            if scans["test"].classes != classes:
                raise ValueError(
                    f"config key '{key}.test': {folders['test']}: class folders "
                    f"{scans['test'].classes} differ from those of {folders['train']}: {classes}"
                )
            return classes, {s: scans[s].samples for s in SPLITS}, notes
        samples = scans["train"].samples
        try:
            train, test = _split_samples(samples, spec["test_size"], spec["split_seed"])
        except ValueError as error:
            counts = np.bincount([label for _, label in samples])
            smallest = int(np.argmin(counts))
            raise ValueError(
                f"config key '{key}.test_size': {len(samples)} images of {len(classes)} classes "
                f"(smallest: {classes[smallest]}, {counts[smallest]} images) cannot be split "
                f"stratified with test_size {spec['test_size']} ({error}); add images, or give "
                f"a separate '{key}.test' folder"
            ) from None
        missing = sorted(set(range(len(classes))) - {label for _, label in test})
        if missing:
            raise ValueError(
                f"config key '{key}.test_size': with test_size {spec['test_size']}, class "
                f"{classes[missing[0]]} gets no test image; add images or raise test_size"
            )
        return classes, {"train": train, "test": test}, notes

    def known_train_labels(self, spec) -> np.ndarray:
        """The train labels from the folder itself, before any job (checked as the job lists
        them), so that task classes and n-shot sizes are checked against them."""
        _, splits, _ = self.splits(spec)
        return np.asarray([label for _, label in splits["train"]], dtype=np.int64)

    def check(self, spec, key: str, checked_folder: Path | None = None) -> list[str]:
        """Before any job: the folders exist, each has at least two classes and no class
        without images, every image file opens (or is listed and left out with
        ``skip_unreadable``), the classes of train and test agree, and the split leaves every
        class a test image. Returns notes of the files left out."""
        return self.splits(spec, key, checked_folder)[2]

    def input_digest(self, spec) -> str:
        """A hash of the folders' listings (paths, sizes, modification times): a rule param,
        so that an image added, removed or rewritten reruns the dataset and all after it."""
        digest = hashlib.sha256()
        for split, folder in sorted(self.named_paths(spec).items()):
            for root, dirs, names in sorted(os.walk(Path(folder).expanduser(), followlinks=True)):
                dirs.sort()
                for name in sorted(names):
                    stat = os.stat(Path(root, name))
                    digest.update(
                        f"{split}\t{root}/{name}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode()
                    )
        return digest.hexdigest()

    def prepare(self, spec, root, resolve):
        classes, splits, notes = self.splits(spec, f"datasets.{root.name}")
        for note in notes:
            log.warning(note)
        self._write_listing(root, splits, {"source": "image_folder", "classes": classes})


class ImageNetValidation(_FolderSource):
    """ImageNet-1K validation images (50 per class), split into train/test by ``test_size``.

    ``root`` holds ``ILSVRC2012_img_val.tar`` and ``ILSVRC2012_devkit_t12.tar.gz`` (or a folder
    torchvision already unpacked them into); ``torchvision.datasets.ImageNet`` unpacks them there
    once. Class ids are the standard 0..999 (sorted WordNet ids).
    """

    def class_ids(self, spec):
        return list(range(1000))

    def named_paths(self, spec) -> dict[str, str]:
        return {"root": spec["root"]}

    def prepare(self, spec, root, resolve):
        from torchvision.datasets import ImageNet

        source = Path(spec["root"]).expanduser()
        try:
            val = ImageNet(str(source), split="val")
        except (RuntimeError, FileNotFoundError) as error:
            raise DatasetUnavailable(
                f"ImageNet validation data not found in {source} ({error}). Put "
                f"ILSVRC2012_img_val.tar and ILSVRC2012_devkit_t12.tar.gz (from image-net.org, "
                f"after registering) into {source}, then rerun."
            ) from error
        samples = [(str(Path(p).resolve()), int(c)) for p, c in val.samples]
        train, test = _split_samples(samples, spec["test_size"], spec["split_seed"])
        self._write_listing(
            root, {"train": train, "test": test}, {"source": "imagenet_val", "wnids": val.wnids}
        )


class MnistM(_FolderSource):
    """MNIST-M (Ganin & Lempitsky, 2015): 32×32 RGB PNGs in ``mnist_m_train/`` and
    ``mnist_m_test/`` with ``mnist_m_train_labels.txt`` / ``mnist_m_test_labels.txt`` (lines
    ``<file name> <digit>``) under ``root``. There is no official download mirror, so the
    release is read from a folder of the user's."""

    def class_ids(self, spec):
        return list(range(10))

    def named_paths(self, spec) -> dict[str, str]:
        return {"root": spec["root"]}

    def prepare(self, spec, root, resolve):
        source = Path(spec["root"]).expanduser()
        splits = {}
        for split in SPLITS:
            labels_file = source / f"mnist_m_{split}_labels.txt"
            if not labels_file.exists():
                raise DatasetUnavailable(
                    f"MNIST-M not found: {labels_file} is missing. Put the unpacked release "
                    f"(mnist_m_train/, mnist_m_test/, mnist_m_train_labels.txt, "
                    f"mnist_m_test_labels.txt) into {source}, then rerun."
                )
            samples = []
            for line in labels_file.read_text().split("\n"):
                if line.strip():
                    name, label = line.split()
                    samples.append(
                        (str((source / f"mnist_m_{split}" / name).resolve()), int(label))
                    )
            splits[split] = samples
        self._write_listing(root, splits, {"source": "mnist_m"})


class _CroppedImages:
    """Listed images, each cropped to its box ``(x, y, width, height)`` in pixels."""

    def __init__(self, samples: list[tuple[str, int]], boxes: Mapping[str, list[float]]):
        self.images, self.boxes = _ListedImages(samples), boxes

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        image, label = self.images[index]
        x, y, width, height = self.boxes[self.images.samples[index][0]]
        return image.crop((int(x), int(y), int(x + width), int(y + height))), label


class Cub200(_FolderSource):
    """Caltech-UCSD Birds-200-2011 (Wah et al., 2011) in its official layout: ``images.txt``
    (image id, path under ``images/``), ``image_class_labels.txt`` (image id, class 1..200),
    ``train_test_split.txt`` (image id, 1 = train) and ``classes.txt`` (class id, name), under
    ``root`` or ``root/CUB_200_2011``. The official split (5,994 train, 5,794 test images);
    class ids 0..199 in ``classes.txt``'s order, so ``{first: 100}`` are Qi et al.'s base
    classes. ``crop``: each image cropped to its ``bounding_boxes.txt`` box. ``download``:
    fetch the public archive (md5-checked by torchvision) into ``root`` if it is not there."""

    URL = "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1"
    MD5 = "97eceeb196236b17998738112f37df78"
    SPLIT_FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt")

    def class_ids(self, spec):
        """0..199, or as many as the release's ``classes.txt`` lists where it is there."""
        classes = self.release(spec) / "classes.txt"
        if classes.is_file():
            return list(range(len(self._table(classes))))
        return list(range(200))

    def named_paths(self, spec) -> dict[str, str]:
        return {} if spec["download"] else {"root": spec["root"]}

    @classmethod
    def release(cls, spec) -> Path:
        """The folder holding the split files: ``root`` or ``root/CUB_200_2011``."""
        root = Path(spec["root"]).expanduser()
        nested = root / "CUB_200_2011"
        return nested if nested.is_dir() else root

    @classmethod
    def missing_files(cls, spec) -> list[str]:
        needed = [*cls.SPLIT_FILES, *(["bounding_boxes.txt"] if spec["crop"] else [])]
        return [name for name in needed if not (cls.release(spec) / name).is_file()]

    def check(self, spec, key: str, checked_folder: Path | None = None) -> list[str]:
        """Before any job: the release's split files are there (unless it is downloaded)."""
        missing = self.missing_files(spec)
        if missing and not spec["download"]:
            raise ValueError(
                f"config key '{key}.root': {self.release(spec)} has no {', '.join(missing)}: "
                "not the CUB_200_2011 release's layout (unpack CUB_200_2011.tgz there, or set "
                f"'{key}.download: true')"
            )
        return []

    @staticmethod
    def _table(path: Path) -> list[list[str]]:
        return [line.split(maxsplit=1) for line in path.read_text().splitlines() if line.strip()]

    @classmethod
    def _read(cls, spec) -> tuple[list[str], dict[str, list[tuple[str, int]]], dict[str, list]]:
        """Class names, the samples of each split (images.txt order), and each image's box."""
        folder = cls.release(spec)
        paths = {i: p.strip() for i, p in cls._table(folder / "images.txt")}
        labels = {i: int(c) - 1 for i, c in cls._table(folder / "image_class_labels.txt")}
        is_train = {
            i: flag.strip() == "1" for i, flag in cls._table(folder / "train_test_split.txt")
        }
        classes = [name.strip() for _, name in cls._table(folder / "classes.txt")]
        splits: dict[str, list[tuple[str, int]]] = {split: [] for split in SPLITS}
        for image, path in paths.items():
            split = "train" if is_train[image] else "test"
            splits[split].append((str((folder / "images" / path).resolve()), labels[image]))
        boxes = {}
        if spec["crop"]:
            for image, box in cls._table(folder / "bounding_boxes.txt"):
                boxes[str((folder / "images" / paths[image]).resolve())] = [
                    float(v) for v in box.split()
                ]
        return classes, splits, boxes

    def known_train_labels(self, spec) -> np.ndarray:
        """The train labels from the split files (a few text files), before any job."""
        if self.missing_files(spec):
            raise DatasetUnavailable(f"{self.release(spec)}: the CUB_200_2011 files are missing")
        _, splits, _ = self._read(spec)
        return np.asarray([label for _, label in splits["train"]], dtype=np.int64)

    def prepare(self, spec, root, resolve):
        if self.missing_files(spec) and spec["download"]:
            from torchvision.datasets.utils import download_and_extract_archive

            target = Path(spec["root"]).expanduser()
            try:
                download_and_extract_archive(
                    self.URL, str(target), filename="CUB_200_2011.tgz", md5=self.MD5
                )
            except Exception as error:  # URLError, RuntimeError, ...: all mean "not obtainable"
                raise DatasetUnavailable(
                    f"could not download CUB-200-2011 from {self.URL}: {error}\nWithout "
                    f"internet access, unpack CUB_200_2011.tgz into {target}, then rerun."
                ) from error
        missing = self.missing_files(spec)
        if missing:
            raise DatasetUnavailable(
                f"CUB-200-2011 not found: {self.release(spec)} has no {', '.join(missing)}. "
                "Unpack CUB_200_2011.tgz there (or set download: true), then rerun."
            )
        classes, splits, boxes = self._read(spec)
        (root / "boxes.json").write_text(json.dumps(boxes))
        self._write_listing(
            root, splits, {"source": "cub200", "classes": classes, "crop": spec["crop"]}
        )

    def images(self, spec, root, split, transform=None):
        samples = self._samples(root, split)
        if not spec["crop"]:
            return _Transformed(_ListedImages(samples), transform)
        return _Transformed(
            _CroppedImages(samples, json.loads((root / "boxes.json").read_text())), transform
        )


class INaturalistDataset(_FolderSource):
    """iNaturalist (Van Horn et al.) species classification. ``version`` 2017 (Qi et al.'s:
    5,089 classes), 2018 or 2019: the images as torchvision's ``INaturalist`` downloads them
    (``root/<version>/<super-category>/<category>/``) and the competition's train/val split from
    its annotation files ``train<version>.json`` and ``val<version>.json`` in ``root``; class
    ids are their ``category_id``. ``2021`` / ``2021_mini``: torchvision's ``2021_train`` /
    ``2021_train_mini`` folder for train and ``2021_valid`` for test, class ids the folders'
    indices (their species ids). ``download``: the images through torchvision (md5-checked)."""

    def class_ids(self, spec):
        return None

    def named_paths(self, spec) -> dict[str, str]:
        """The split files a pre-2021 version needs (torchvision downloads only the images),
        and the images' root unless they are downloaded."""
        root = Path(spec["root"]).expanduser()
        paths = {} if spec["download"] else {"root": str(root)}
        for name in self.annotation_files(spec).values():
            paths[f"root ({name})"] = str(root / name)
        return paths

    @staticmethod
    def folders(spec) -> dict[str, str]:
        """torchvision's version folder of each split."""
        version = str(spec["version"])
        if version.startswith("2021"):
            train = "2021_train_mini" if version == "2021_mini" else "2021_train"
            return {"train": train, "test": "2021_valid"}
        return {"train": version, "test": version}

    @staticmethod
    def annotation_files(spec) -> dict[str, str]:
        """The competition's split files a pre-2021 version needs (none for 2021)."""
        version = str(spec["version"])
        if version.startswith("2021"):
            return {}
        return {"train": f"train{version}.json", "test": f"val{version}.json"}

    @staticmethod
    def _open(spec, version: str, download: bool):
        """torchvision's ``INaturalist`` of one version folder (downloaded if asked)."""
        from torchvision.datasets import INaturalist

        root = Path(spec["root"]).expanduser()
        try:
            return INaturalist(str(root), version=version, download=download)
        except Exception as error:  # URLError, RuntimeError, ...: all mean "not obtainable"
            raise DatasetUnavailable(
                f"iNaturalist {version} not found in {root / version} ({error}). Set "
                f"download: true, or put the unpacked images there, then rerun."
            ) from error

    def prepare(self, spec, root, resolve):
        source = Path(spec["root"]).expanduser()
        annotations = self.annotation_files(spec)
        missing = [name for name in annotations.values() if not (source / name).is_file()]
        if missing:
            raise DatasetUnavailable(
                f"{source} has no {', '.join(missing)}, the iNaturalist {spec['version']} "
                "competition's train/val split (torchvision downloads only the images): put "
                "the annotation files from github.com/visipedia/inat_comp there, then rerun"
            )
        splits: dict[str, list[tuple[str, int]]] = {}
        names: dict[int, str] = {}
        folders = self.folders(spec)
        # 2017-2019 keep both splits in one folder: opened (listed, downloaded) once
        opened = {
            folder: self._open(spec, folder, spec["download"]) for folder in set(folders.values())
        }
        for split in SPLITS:
            dataset = opened[folders[split]]
            if not annotations:  # 2021: a folder per split, a sub-folder per species
                splits[split] = [
                    (str(Path(dataset.root, dataset.all_categories[c], name).resolve()), c)
                    for c, name in sorted(dataset.index, key=lambda item: (item[0], item[1]))
                ]
                names = dict(enumerate(dataset.all_categories))
                continue
            # 2017-2019: file names in the split files start with the archive's top folder,
            # which torchvision renames to the version
            listed = json.loads((source / annotations[split]).read_text())
            category = {a["image_id"]: a["category_id"] for a in listed["annotations"]}
            names.update({c["id"]: c["name"] for c in listed["categories"]})
            splits[split] = [
                (
                    str(Path(dataset.root, *Path(image["file_name"]).parts[1:]).resolve()),
                    int(category[image["id"]]),
                )
                for image in listed["images"]
            ]
            absent = [path for path, _ in splits[split][:1000] if not Path(path).is_file()]
            if absent:
                raise DatasetUnavailable(
                    f"{annotations[split]} lists {absent[0]}, which is not there: the images "
                    f"of {dataset.root} are not those of iNaturalist {spec['version']}"
                )
        self._write_listing(
            root,
            splits,
            {
                "source": "inaturalist",
                "version": str(spec["version"]),
                "classes": [names[c] for c in sorted(names)],
            },
        )


class CombinedDataset(_ArraySource):
    """Several configured datasets with shared class ids pooled into one (CombiDigits: MNIST +
    MNIST-M + USPS + SVHN). Every image is converted to RGB and resized to ``size``×``size``, and
    stored as arrays, so the pool is built once and read fast."""

    def class_ids(self, spec):
        return None

    def requires(self, spec):
        return list(spec["datasets"])

    def prepare(self, spec, root, resolve):
        import torch
        from torchvision.transforms import v2

        to_rgb_array = v2.Compose(
            [
                v2.ToImage(),
                v2.RGB(),
                v2.Resize((spec["size"],) * 2),
                v2.ToDtype(torch.uint8, scale=True),
            ]
        )
        splits = {}
        for split in SPLITS:
            images, labels = [], []
            for name in spec["datasets"]:
                part_spec, manifest = resolve(name)
                part = split_images(part_spec, manifest, split, transform=to_rgb_array)
                for image, label in part:
                    images.append(image.numpy())
                    labels.append(label)
            splits[split] = (np.stack(images), np.asarray(labels))
        self._write(
            root,
            splits,
            scale=255.0,
            info={"source": "combine", "datasets": list(spec["datasets"])},
        )


def npz_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Array name -> shape of an ``.npz`` file, from the member headers (no data read)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            shapes = {}
            for member in archive.namelist():
                if member.endswith(".npy"):
                    with archive.open(member) as handle:
                        major, _ = np.lib.format.read_magic(handle)
                        read_header = (
                            np.lib.format.read_array_header_1_0
                            if major == 1
                            else np.lib.format.read_array_header_2_0
                        )
                        shape, _, _ = read_header(handle)
                    shapes[member[: -len(".npy")]] = shape
            return shapes
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise ValueError(f"{path}: not a readable .npz file ({error})") from None


def check_embeddings(embeddings: np.ndarray, labels: np.ndarray, where: str) -> None:
    """Precomputed embeddings must be a finite float matrix with one integer label >= 0 per row;
    the error names ``where`` (the file) and what is wrong."""
    if embeddings.ndim != 2 or not np.issubdtype(embeddings.dtype, np.floating):
        raise ValueError(
            f"{where}: embeddings must be a 2-D float array, got "
            f"{embeddings.dtype} of shape {embeddings.shape}"
        )
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{where}: labels must be a 1-D integer array, got {labels.dtype} of "
            f"shape {labels.shape}"
        )
    if len(embeddings) != len(labels):
        raise ValueError(f"{where}: {len(embeddings)} embeddings but {len(labels)} labels")
    if not np.isfinite(embeddings).all():
        rows = np.flatnonzero(~np.isfinite(embeddings).all(axis=1))
        raise ValueError(
            f"{where}: {len(rows)} embeddings contain NaN or inf (first: row {rows[0]})"
        )
    if len(labels) and labels.min() < 0:
        raise ValueError(f"{where}: labels must be >= 0, found {labels.min()}")


class PrecomputedEmbeddings:
    """Embeddings computed elsewhere, one file per configured model (all of source
    ``precomputed``): ``models: {name: file}``. A file is an ``.npz`` with ``train_embeddings``,
    ``train_labels``, ``test_embeddings`` and ``test_labels``, or a folder with ``.npy`` files of
    those names. Every file must hold the same labels (the same images, in the same order).
    Checked once (shape, dtype, NaN/inf, labels), then cached as arrays."""

    def class_ids(self, spec):
        return None

    def requires(self, spec):
        return []

    @classmethod
    def read(cls, path: str | Path) -> dict[str, np.ndarray]:
        """The four arrays of a precomputed file or folder."""
        return cls._four_arrays(path, lambda f: np.load(f, allow_pickle=False), load_arrays)

    @classmethod
    def shapes(cls, path: str | Path) -> dict[str, tuple[int, ...]]:
        """The shapes of the four arrays of a precomputed file or folder, from headers only."""
        return cls._four_arrays(path, lambda f: np.load(f, mmap_mode="r").shape, npz_shapes)

    @staticmethod
    def _four_arrays(path: str | Path, from_npy: Callable, from_npz: Callable) -> dict[str, Any]:
        """``from_npy`` of each of the four ``.npy`` files of a folder, or the four arrays'
        entries of ``from_npz`` of an ``.npz`` file; a missing one is named."""
        path = Path(path).expanduser()
        names = [f"{split}_{kind}" for split in SPLITS for kind in ("embeddings", "labels")]
        if path.is_dir():
            missing = [name for name in names if not (path / f"{name}.npy").is_file()]
            if missing:
                raise DatasetUnavailable(f"{path}: missing {[f'{m}.npy' for m in missing]}")
            return {name: from_npy(path / f"{name}.npy") for name in names}
        if not path.is_file():
            raise DatasetUnavailable(f"{path}: precomputed embeddings not found")
        found = from_npz(path)
        missing = [name for name in names if name not in found]
        if missing:
            raise ValueError(f"{path}: has no arrays {missing} (it has {sorted(found)})")
        return found

    def named_paths(self, spec) -> dict[str, str]:
        return {f"models.{model}": path for model, path in spec["models"].items()}

    def check(self, spec, key: str, checked_folder: Path | None = None) -> list[str]:
        """Before any job, from the arrays' headers (no data read): each file holds the four
        arrays, 2-D embeddings of one width in train and test, one label per row, and every
        model's file the same number of train and of test rows."""
        rows: dict[str, tuple[str, int]] = {}
        for model, path in spec["models"].items():
            where = f"config key '{key}.models.{model}'"
            try:
                shapes = self.shapes(path)
            except (DatasetUnavailable, ValueError) as error:
                raise ValueError(f"{where}: {error}") from None
            for split in SPLITS:
                embeddings = shapes[f"{split}_embeddings"]
                if len(embeddings) != 2:
                    raise ValueError(
                        f"{where}: {path}: {split}_embeddings has shape {embeddings}; 2-D needed"
                    )
                if shapes[f"{split}_labels"][:1] != embeddings[:1]:
                    labels = shapes[f"{split}_labels"]
                    raise ValueError(
                        f"{where}: {path} ({split}): {embeddings[0]} embeddings but "
                        f"{labels[0] if labels else labels} labels"
                    )
                if split in rows and rows[split][1] != embeddings[0]:
                    raise ValueError(
                        f"{where}: {path} has {embeddings[0]} {split} rows, {rows[split][0]} has "
                        f"{rows[split][1]}; every model's file must hold the same images"
                    )
                rows.setdefault(split, (str(path), embeddings[0]))
            train, test = shapes["train_embeddings"][1], shapes["test_embeddings"][1]
            if train != test:
                raise ValueError(
                    f"{where}: {path}: train embeddings are {train}-d but test embeddings "
                    f"{test}-d; both splits must come from the same model"
                )
        return []

    def prepare(self, spec, root, resolve):
        self.check(spec, f"datasets.{root.name}")
        labels: dict[str, np.ndarray] = {}
        files = []
        for model, path in spec["models"].items():
            arrays = self.read(path)
            for split in SPLITS:
                embeddings, split_labels = (
                    arrays[f"{split}_embeddings"],
                    arrays[f"{split}_labels"],
                )
                check_embeddings(embeddings, split_labels, f"{path} ({split})")
                if split in labels and not np.array_equal(labels[split], split_labels):
                    raise ValueError(
                        f"{path}: its {split} labels differ from those of the "
                        "dataset's other models (the same images in the same "
                        "order are needed)"
                    )
                labels[split] = split_labels
                save_arrays(
                    root / f"{model}_{split}.npz",
                    embeddings=embeddings.astype(np.float32, copy=False),
                )
                files.append(f"{model}_{split}.npz")
        for split in SPLITS:
            save_arrays(root / f"{split}.npz", labels=labels[split].astype(np.int64))
        write_manifest(
            root / MANIFEST,
            [*files, *(f"{split}.npz" for split in SPLITS)],
            {"source": "embeddings", "models": sorted(spec["models"])},
        )

    def labels(self, spec, root, split):
        return load_arrays(root / f"{split}.npz")["labels"]

    def input_files(self, spec) -> list[str]:
        """The user's files, so that the workflow reruns from them when they change."""
        files = []
        for path in map(Path, spec["models"].values()):
            if path.is_dir():
                files += [
                    str(path / f"{split}_{kind}.npy")
                    for split in SPLITS
                    for kind in ("embeddings", "labels")
                ]
            else:
                files.append(str(path))
        return files

    def embeddings(self, spec, root, split, model: str) -> np.ndarray:
        if model not in spec["models"]:
            raise ValueError(
                f"this dataset has no embeddings of model {model!r} (it has "
                f"{sorted(spec['models'])})"
            )
        return load_arrays(root / f"{model}_{split}.npz")["embeddings"]

    def images(self, spec, root, split, transform=None):
        raise ValueError(
            "a dataset of source 'embeddings' holds no images: use it with models "
            "of source 'precomputed'"
        )


DATASET_SOURCES: dict[str, DatasetSource] = {
    "sklearn_digits": SklearnDigits(),
    "torchvision": TorchvisionDataset(),
    "image_folder": ImageFolderDataset(),
    "imagenet_val": ImageNetValidation(),
    "mnist_m": MnistM(),
    "cub200": Cub200(),
    "inaturalist": INaturalistDataset(),
    "combine": CombinedDataset(),
    "embeddings": PrecomputedEmbeddings(),
}


def dataset_source(spec: Mapping[str, Any]) -> DatasetSource:
    try:
        return DATASET_SOURCES[spec["source"]]
    except KeyError:
        raise ValueError(
            f"unknown dataset source {spec.get('source')!r}; known: {sorted(DATASET_SOURCES)}"
        ) from None


def prepare_dataset(
    spec: Mapping[str, Any], manifest: str | Path, resolve: Resolver | None = None
) -> None:
    """Obtain a dataset into the folder of ``manifest`` (the file Snakemake tracks)."""
    root = Path(manifest).parent
    root.mkdir(parents=True, exist_ok=True)
    dataset_source(spec).prepare(spec, root, resolve or _no_resolver)


def _no_resolver(name: str):
    raise ValueError(f"this dataset needs dataset {name!r}, but no resolver was given")


def train_labels_if_known(spec: Mapping[str, Any], manifest: str | Path) -> np.ndarray | None:
    """The train labels where they are known before any job runs: computed by the source
    (scikit-learn's digits), or read from a dataset already cached. None otherwise."""
    source = dataset_source(spec)
    if hasattr(source, "known_train_labels"):
        try:
            return source.known_train_labels(spec)
        except DatasetUnavailable:  # its folder is missing: listed by config.check_inputs
            return None
    if Path(manifest).exists():
        try:  # no checksums here: this runs at every DAG build; the jobs verify what they read
            return source.labels(spec, Path(manifest).parent, "train")
        except (OSError, ValueError, RuntimeError):
            return None  # a damaged cache is reported by the job that reads it
    return None


def class_ids_of(spec: Mapping[str, Any], train_labels: np.ndarray) -> list[int]:
    """The source's class ids, or, where it only knows them from the data (image folders, pooled
    datasets), the classes present in ``train_labels``."""
    known = dataset_source(spec).class_ids(spec)
    return known if known is not None else sorted(set(np.asarray(train_labels).tolist()))


def split_labels(spec: Mapping[str, Any], manifest: str | Path, split: str) -> np.ndarray:
    read_manifest(manifest)
    return dataset_source(spec).labels(spec, Path(manifest).parent, split)


def all_split_labels(spec: Mapping[str, Any], manifest: str | Path) -> dict[str, np.ndarray]:
    """The labels of every split, the checksums verified once."""
    read_manifest(manifest)
    source = dataset_source(spec)
    return {split: source.labels(spec, Path(manifest).parent, split) for split in SPLITS}


def split_images(spec: Mapping[str, Any], manifest: str | Path, split: str, transform=None):
    read_manifest(manifest)
    return dataset_source(spec).images(spec, Path(manifest).parent, split, transform)


def dataset_input_digest(spec: Mapping[str, Any]) -> str:
    """A hash of the user's image folders a dataset lists (``image_folder``), '' for other
    sources: the dataset rule's param, so that an image added, removed or rewritten after a
    run reruns the dataset and every stage after it instead of reusing stale results."""
    source = dataset_source(spec)
    return source.input_digest(spec) if hasattr(source, "input_digest") else ""


def dataset_input_files(spec: Mapping[str, Any]) -> list[str]:
    """Files of the user's that a dataset is made from and that the workflow tracks (a change
    reruns it): the precomputed embeddings of a dataset of source ``embeddings``."""
    source = dataset_source(spec)
    return source.input_files(spec) if hasattr(source, "input_files") else []


def split_embeddings(spec: Mapping[str, Any], manifest: str | Path, split: str, model: str):
    """Precomputed embeddings ``[N, d]`` and labels of a split of a dataset of source
    ``embeddings``, for one of its models (the manifest's checksums are verified first)."""
    read_manifest(manifest)
    source = dataset_source(spec)
    root = Path(manifest).parent
    return source.embeddings(spec, root, split, model), source.labels(spec, root, split)


def task_class_names(manifest: Mapping[str, Any], task: Mapping[str, np.ndarray]) -> list[str]:
    """Names of a task's labels 0..C-1: the dataset's class names where its manifest records
    them (image folders), else the class ids; a label merging several classes ("d in 1")
    joins their names with '+'."""
    names = manifest.get("classes")
    per_label: dict[int, list[str]] = {}
    for original, label in zip(task["original_class"], task["task_label"], strict=True):
        name = names[int(original)] if names else str(int(original))
        per_label.setdefault(int(label), []).append(name)
    return ["+".join(per_label[label]) for label in range(len(per_label))]
