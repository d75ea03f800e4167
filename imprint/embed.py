"""Embedding extraction: a frozen network applied to a whole dataset split, batched."""

from __future__ import annotations

import numpy as np


def select_device(requested: str = "auto"):
    """``"auto"``: CUDA when available, else the CPU."""
    import torch

    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def extract_embeddings(
    network,
    dataset,
    batch_size: int = 256,
    num_workers: int = 0,
    device: str = "auto",
    threads: int = 1,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings ``[N, d]`` (float32) and labels ``[N]`` (int64) of ``dataset``, in its order."""
    import torch
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    torch.set_num_threads(threads)
    target = select_device(device)
    network = network.to(target).eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=target.type == "cuda")
    embeddings, labels = [], []
    with torch.inference_mode():
        for images, batch_labels in tqdm(loader, desc="embedding", unit="batch",
                                         disable=not progress):
            output = network(images.to(target, non_blocking=True))
            embeddings.append(output.float().flatten(1).cpu().numpy())
            labels.append(np.asarray(batch_labels, dtype=np.int64))
    return np.concatenate(embeddings), np.concatenate(labels)
