"""Neural collapse: the NC1 within-class variability measure."""

from __future__ import annotations

import numpy as np

#: ``papyan``: the textbook NC1; ``imprint_code``: as the IMPRINT authors' code computes it.
NC1_VARIANTS = ("papyan", "imprint_code")


def nc1(embeddings: np.ndarray, labels: np.ndarray, variant: str = "papyan") -> float:
    """NC1 = trace(Σ_W Σ_B⁺) / C (Papyan, Han & Donoho 2020).

    Σ_W is the mean over classes of each class's covariance (normalised by the class size), Σ_B
    the covariance of the C class means μ_c around the global mean μ_G of all embeddings, and ⁺
    the Moore–Penrose pseudo-inverse (singular values below ``max(C, d)·eps`` of the largest are
    treated as zero, like ``numpy.linalg.pinv``). Small values mean collapsed classes.

    ``variant``:

    - ``"papyan"``: Σ_W = (1/C) Σ_c (1/n_c) Σ_{i∈c} (x_i − μ_c)(x_i − μ_c)ᵀ, the definition.
    - ``"imprint_code"``: as the IMPRINT authors' code (DATEXIS/IMPRINT, ``src/nc``) computes
      it, centring each class's samples on (μ_c − μ_G) instead of μ_c:
      Σ_W' = (1/C) Σ_c (1/n_c) Σ_{i∈c} (x_i − μ_c + μ_G)(x_i − μ_c + μ_G)ᵀ = Σ_W + μ_G μ_Gᵀ
      (the cross terms vanish), so NC1' = NC1 + μ_Gᵀ Σ_B⁺ μ_G / C. The paper's NC1 figures use
      these values; they exceed the textbook ones wherever μ_G has a component in the span of
      the centred class means.

    Computed in the (at most C−1 dimensional) span of the centred class means, so no d×d matrix is
    formed: with Σ_B = Σ_j s_j² v_j v_jᵀ, trace(Σ_W Σ_B⁺) = Σ_j v_jᵀ Σ_W v_j / s_j².
    Raises ``ValueError`` for fewer than two classes, where Σ_B is zero and NC1 is undefined.
    """
    if variant not in NC1_VARIANTS:
        raise ValueError(f"unknown NC1 variant {variant!r}; expected one of {NC1_VARIANTS}")
    x = np.asarray(embeddings, dtype=np.float64)
    classes, position = np.unique(np.asarray(labels), return_inverse=True)
    n_classes = len(classes)
    if n_classes < 2:
        raise ValueError(f"NC1 needs at least two classes, got {n_classes}")
    counts = np.bincount(position, minlength=n_classes)
    class_means = np.zeros((n_classes, x.shape[1]))
    np.add.at(class_means, position, x)
    class_means /= counts[:, None]
    between = (class_means - x.mean(axis=0)) / np.sqrt(n_classes)
    _, singular, directions = np.linalg.svd(between, full_matrices=False)
    sigma_b_eigen = singular**2
    keep = sigma_b_eigen > max(between.shape) * np.finfo(np.float64).eps * sigma_b_eigen.max()
    if not keep.any():
        return float("inf")  # all class means coincide: no between-class spread at all
    projected = (x - class_means[position]) @ directions[keep].T
    per_class_variance = np.zeros((n_classes, projected.shape[1]))
    np.add.at(per_class_variance, position, projected**2)
    within_along_directions = (per_class_variance / counts[:, None]).mean(axis=0)
    if variant == "imprint_code":
        within_along_directions = within_along_directions + (directions[keep] @ x.mean(axis=0)) ** 2
    return float((within_along_directions / sigma_b_eigen[keep]).sum() / n_classes)
