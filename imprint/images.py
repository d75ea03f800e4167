"""Checks of image files, shared by the ``imprint`` command and the workflow's image folders
(a module of its own: both import it, and the workflow's checks must not import the backbone
code, which imports the config checks)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

#: The file name endings of images, those of torchvision's ImageFolder (``IMG_EXTENSIONS``).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def unreadable_images(paths: Sequence[Path]) -> list[tuple[Path, str]]:
    """The images among ``paths`` that PIL cannot open, with why: checked before any network
    runs (headers and, for PNG, checksums: ``Image.verify``; decoding itself fails later only
    on truncated pixel data)."""
    from PIL import Image

    bad = []
    for path in paths:
        try:
            with Image.open(path) as image:
                image.verify()
        except Exception as error:  # PIL raises many types for a damaged file
            bad.append((path, str(error).splitlines()[0] or type(error).__name__))
    return bad
