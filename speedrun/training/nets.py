"""The networks: the user's ResNet-18 and Page's ResNet-9 (DAWNBench, 2018).

Both take normalized 3×32×32 images and return 10 logits. `bn=False` swaps
every BatchNorm for an identity so the user's USE_BN switch can be replayed.
"""

from __future__ import annotations

import torch
from torch import nn

MODELS = ("resnet18", "resnet9")


def _norm(channels: int, bn: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if bn else nn.Identity()


def conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3×3 convolutions plus a shortcut (a 1×1 projection when the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, bn: bool = True):
        super().__init__()
        self.conv1 = conv3x3(c_in, c_out, stride)
        self.bn1 = _norm(c_out, bn)
        self.conv2 = conv3x3(c_out, c_out)
        self.bn2 = _norm(c_out, bn)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, kernel_size=1, stride=stride, bias=False), _norm(c_out, bn)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """CIFAR ResNet-18: 3×3 stem without max-pool, BasicBlock ×[2,2,2,2], widths 64-128-256-512."""

    def __init__(self, num_classes: int = 10, bn: bool = True):
        super().__init__()
        self.stem = nn.Sequential(conv3x3(3, 64), _norm(64, bn), nn.ReLU(inplace=True))
        layers, c_in = [], 64
        for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [BasicBlock(c_in, width, stride, bn), BasicBlock(width, width, 1, bn)]
            c_in = width
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)
        _kaiming_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.layers(self.stem(x)))
        return self.fc(torch.flatten(x, 1))


def _conv_bn(c_in: int, c_out: int, bn: bool, pool: bool = False) -> nn.Sequential:
    layers = [conv3x3(c_in, c_out), _norm(c_out, bn), nn.ReLU(inplace=True)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class Residual(nn.Module):
    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.inner(x)


class ResNet9(nn.Module):
    """Page's 9-layer residual net: prep 64, layer1 128 (+res), layer2 256, layer3 512 (+res).

    Ends with a global max-pool and a bias-free linear layer scaled by 1/8, as in
    the DAWNBench submission.
    """

    def __init__(self, num_classes: int = 10, bn: bool = True):
        super().__init__()
        self.net = nn.Sequential(
            _conv_bn(3, 64, bn),
            _conv_bn(64, 128, bn, pool=True),
            Residual(nn.Sequential(_conv_bn(128, 128, bn), _conv_bn(128, 128, bn))),
            _conv_bn(128, 256, bn, pool=True),
            _conv_bn(256, 512, bn, pool=True),
            Residual(nn.Sequential(_conv_bn(512, 512, bn), _conv_bn(512, 512, bn))),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
        )
        self.fc = nn.Linear(512, num_classes, bias=False)
        self.scale = 0.125
        _kaiming_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.net(x)) * self.scale


def _kaiming_init(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def build_model(name: str, *, bn: bool = True, num_classes: int = 10) -> nn.Module:
    if name == "resnet18":
        return ResNet18(num_classes, bn)
    if name == "resnet9":
        return ResNet9(num_classes, bn)
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters, as the user's script printed them."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --- the airbench94 network (Jordan, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU", 2024) ------------

def whitening_filters(images: torch.Tensor, kernel: int = 2, eps: float = 5e-4) -> torch.Tensor:
    """Filters that whiten the k×k patches of `images`: eigenvectors of their covariance and their negations.

    Each eigenvector is divided by √(eigenvalue + eps), so the filtered patches
    have unit variance along every eigen-direction (eps damps the noisiest
    ones). The negated copies let the following GELU pass both signs. Output:
    (2·c·k·k) × c × k × k, largest eigenvalue first.
    """
    c = images.shape[1]
    patches = images.float().unfold(2, kernel, 1).unfold(3, kernel, 1)  # n×c×h'×w'×k×k
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * kernel * kernel)
    covariance = patches.T @ patches / len(patches)  # second moment, as in the paper (no centering)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    order = eigenvalues.argsort(descending=True)
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    filters = (eigenvectors / torch.sqrt(eigenvalues + eps)).T.reshape(-1, c, kernel, kernel)
    return torch.cat((filters, -filters))


class FrozenScaleBatchNorm(nn.BatchNorm2d):
    """BatchNorm with its scale fixed at 1 (only the bias trains) and fast statistics.

    `momentum` is airbench's: the weight of the old running statistics (0.6),
    i.e. PyTorch momentum 0.4, so the statistics keep up with ~10 epochs of fast change.
    """

    def __init__(self, channels: int, momentum: float = 0.6):
        super().__init__(channels, eps=1e-12, momentum=1 - momentum)
        self.weight.requires_grad_(False)


class DiracConv(nn.Conv2d):
    """3×3 'same' convolution without bias whose first in-channels filters start as the identity.

    A deep plain net then starts close to a shallow one: signal passes through
    unchanged at initialisation, and training only has to learn the changes.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__(c_in, c_out, kernel_size=3, padding="same", bias=False)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        with torch.no_grad():
            nn.init.dirac_(self.weight[:self.in_channels])


class ConvGroup(nn.Module):
    """conv → maxpool → BN → GELU → conv → BN → GELU."""

    def __init__(self, c_in: int, c_out: int, bn_momentum: float):
        super().__init__()
        self.conv1 = DiracConv(c_in, c_out)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = FrozenScaleBatchNorm(c_out, bn_momentum)
        self.conv2 = DiracConv(c_out, c_out)
        self.norm2 = FrozenScaleBatchNorm(c_out, bn_momentum)
        self.activ = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.activ(self.norm1(self.pool(self.conv1(x))))
        return self.activ(self.norm2(self.conv2(x)))


class AirbenchNet(nn.Module):
    """Frozen 2×2 whitening conv (24 channels) + GELU, three conv groups, 3×3 max-pool, scaled linear head."""

    def __init__(self, widths: tuple[int, int, int] = (64, 256, 256), bn_momentum: float = 0.6,
                 head_scale: float = 1 / 9, num_classes: int = 10, zero_whiten_bias: bool = True):
        super().__init__()
        whiten_width = 2 * 3 * 2 * 2
        self.whiten = nn.Conv2d(3, whiten_width, kernel_size=2, padding=0, bias=True)
        self.whiten.weight.requires_grad_(False)  # computed from the data, never trained
        if zero_whiten_bias:  # airbench94 starts it at zero (airbench94_muon keeps PyTorch's default init)
            nn.init.zeros_(self.whiten.bias)
        self.layers = nn.Sequential(
            nn.GELU(),
            ConvGroup(whiten_width, widths[0], bn_momentum),
            ConvGroup(widths[0], widths[1], bn_momentum),
            ConvGroup(widths[1], widths[2], bn_momentum),
            nn.MaxPool2d(3),
            nn.Flatten(),
        )
        self.head = nn.Linear(widths[2], num_classes, bias=False)
        self.head_scale = head_scale  # a small output scale: logits start near zero, the head lr stays sane

    @torch.no_grad()
    def init_whitening(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the whitening filters from normalized training images."""
        self.whiten.weight.copy_(whitening_filters(images, self.whiten.kernel_size[0], eps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(self.whiten(x))) * self.head_scale
