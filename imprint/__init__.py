"""imprint: weight imprinting on frozen foundation-model embeddings (the IMPRINT framework).

``ImprintingClassifier`` and ``nc1`` are imported on first use, so that workflow jobs that need
neither (task construction, table collection) do not pay for importing scikit-learn.
"""

from typing import TYPE_CHECKING

__all__ = ["ImprintingClassifier", "nc1"]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from imprint.classifier import ImprintingClassifier
    from imprint.nc import nc1


def __getattr__(name: str):
    if name == "ImprintingClassifier":
        from imprint.classifier import ImprintingClassifier

        return ImprintingClassifier
    if name == "nc1":
        from imprint.nc import nc1

        return nc1
    raise AttributeError(f"module 'imprint' has no attribute {name!r}")
