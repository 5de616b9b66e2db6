"""Test-only stand-ins for the networks, for the tests of what a training records, prints and leaves behind.

Those tests need a training, not a good one: a real ResNet-9 epoch costs a CPU seconds even on 48 synthetic
images, and the default test tier ran hundreds of them. These nets keep the real ones' interface (normalized
3×32×32 in, 10 logits out, the `bn` switch; the airbench net's whitening and parameter groups, at narrow
widths) at about a thousand parameters. The real networks stay tested: their shapes and parameter counts in
test_nets.py and test_recipes.py, real learning in the `slow` tier.

In-process, through the `tiny_nets` fixture (tests/conftest.py); across a process boundary, as
`python -m tests.tinynets ARGS`: the speedrun program with the tiny nets installed.
"""

from __future__ import annotations

from functools import partial

from torch import nn

AIRBENCH_WIDTHS = (8, 16, 16)


class TinyNet(nn.Module):
    """conv 3→8 → norm → ReLU → 4×4 max-pool → residual conv 8→8 → global max-pool → bias-free linear."""

    def __init__(self, num_classes: int = 10, bn: bool = True):
        super().__init__()

        def norm():
            return nn.BatchNorm2d(8) if bn else nn.Identity()

        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), norm(), nn.ReLU(), nn.MaxPool2d(4))
        self.inner = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), norm(), nn.ReLU())
        self.pool = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.fc = nn.Linear(8, num_classes, bias=False)

    def forward(self, x):
        x = self.stem(x)
        return self.fc(self.pool(x + self.inner(x)))


def tiny_model(name: str, *, bn: bool = True, num_classes: int = 10) -> nn.Module:
    """What the classic loop's `build_model` returns here, for either model name."""
    return TinyNet(num_classes, bn)


def tiny_param_count() -> int:
    return sum(p.numel() for p in TinyNet().parameters())


def install(setattr=setattr) -> None:
    """Swap the tiny nets in: the classic loop's models and the airbench recipes' network.
    `setattr` is pytest's monkeypatch.setattr in a test (undone afterwards), the builtin in a process of its own.

    The FLOP counts are cached by network name (training.flops): the stand-ins get a cache of their own,
    so that they are never costed as the real network a test before them counted (707 MFLOP an image for
    a net of a thousand parameters: an MFU over 100%, and a second's CPU-peak probe again in every run),
    and a later test of the real network never gets theirs."""
    from speedrun.recipes import airbench94, airbench94_muon
    from speedrun.training import flops, loop, nets

    setattr(flops, "_cache", {})
    setattr(loop, "build_model", tiny_model)
    narrow = partial(nets.AirbenchNet, AIRBENCH_WIDTHS)
    setattr(airbench94, "AirbenchNet", narrow)
    setattr(airbench94_muon, "AirbenchNet", narrow)


def scored_by_lr(record_epoch, *, larger_is_better: bool = True):
    """`Recording.epoch` with the val accuracy a setting deserves, whatever 64 synthetic images teach:
    an lr of 1 or more diverges (0%), the others learn (50%), a larger lr a little better (50% + lr)
    unless `larger_is_better` is False. For the tests of pruning, which need a hopeless trial for
    certain (and, where workers interleave, no other trial below the median)."""

    def scored(self, *args, val_acc, **kwargs):
        lr = self.config.lr
        return record_epoch(self, *args, val_acc=0.0 if lr >= 1 else 50 + (lr if larger_is_better else 0), **kwargs)

    return scored


if __name__ == "__main__":
    import os
    import sys

    install()
    if os.environ.get("TINYNETS_SCORE_BY_LR"):
        from speedrun.training.recording import Recording

        Recording.epoch = scored_by_lr(Recording.epoch, larger_is_better=os.environ["TINYNETS_SCORE_BY_LR"] != "flat")
    from speedrun.cli import run

    sys.argv[0] = "speedrun"
    run()
