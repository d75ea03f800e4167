"""Embedding extraction: a frozen network applied to a whole dataset split, batched."""

from __future__ import annotations

import numpy as np

from imprint.devices import resolve_device


def loader_settings(batch_size, num_workers, on_gpu: bool, threads: int) -> tuple[int, int]:
    """Resolve ``"auto"``: measured with benchmarks/bench_embedding.py, a CPU runs best with
    small batches and no loader workers (they take the cores the convolutions need), a GPU with
    large batches and workers that keep it fed."""
    if batch_size == "auto":
        batch_size = 256 if on_gpu else 32
    if num_workers == "auto":
        num_workers = min(8, max(threads, 1)) if on_gpu else 0
    return int(batch_size), int(num_workers)


def extract_embeddings(
    network,
    dataset,
    batch_size: int | str = "auto",
    num_workers: int | str = "auto",
    device: str = "auto",
    threads: int = 1,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings ``[N, d]`` (float32) and labels ``[N]`` (int64) of ``dataset``, in its order.

    Batched under ``torch.inference_mode``, image batches in channels-last memory layout (faster
    convolutions on CPU and GPU). On CUDA also bfloat16 autocast (fp16 where bf16 is
    unsupported), pinned host memory and asynchronous copies; embeddings come back in float32.
    On the CPU: ``threads`` intra-op threads, float32. ``num_workers`` DataLoader processes
    decode and transform images in parallel (see :func:`loader_settings` for ``"auto"``).
    """
    import torch
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    torch.set_num_threads(max(threads, 1))
    target = resolve_device(device)
    on_gpu = target.type == "cuda"
    batch_size, num_workers = loader_settings(batch_size, num_workers, on_gpu, threads)
    network = network.to(target, memory_format=torch.channels_last).eval()
    if on_gpu:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=on_gpu,
        persistent_workers=False,
    )
    embeddings, labels = [], []
    with torch.inference_mode():
        for images, batch_labels in tqdm(
            loader, desc="embedding", unit="batch", disable=not progress
        ):
            images = images.to(target, non_blocking=True)
            if images.dim() == 4:
                images = images.contiguous(memory_format=torch.channels_last)
            if on_gpu:
                with torch.autocast("cuda", dtype=dtype):
                    output = network(images)
            else:
                output = network(images)
            embeddings.append(output.float().flatten(1).cpu().numpy())
            labels.append(np.asarray(batch_labels, dtype=np.int64))
    return np.concatenate(embeddings), np.concatenate(labels)
