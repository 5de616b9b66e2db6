"""CIFAR-10 loaded once onto the device as uint8 NCHW tensors.

The standard `cifar-10-batches-py` pickles are read directly: torchvision's
CIFAR10 class checks MD5 sums of the original download and refuses the
lossless local copy in ../shared, so shapes and labels are validated instead.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from speedrun.errors import SpeedrunError

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
ROW = 3 * 32 * 32
# `--val-subset N` evaluates the same N test images in every run (so runs stay comparable): the first N
# of one fixed permutation of the test set, drawn with this seed.
VAL_SUBSET_SEED = 0


@dataclass
class Cifar10:
    """Images as uint8 N×3×32×32 (channels_last memory) and int64 labels, on one device."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor

    @property
    def num_train(self) -> int:
        return len(self.train_labels)


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as f:
            entry = pickle.load(f, encoding="latin1")
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise SpeedrunError(f"cannot read {path}: {exc}") from exc
    data = np.asarray(entry.get("data") if isinstance(entry, dict) else None)
    labels = np.asarray(entry.get("labels", entry.get("fine_labels", [])) if isinstance(entry, dict) else [])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != ROW:
        raise SpeedrunError(f"{path}: expected 'data' as N×{ROW} uint8, found {data.dtype} {data.shape}")
    if labels.shape != (len(data),) or (len(labels) and (labels.min() < 0 or labels.max() > 9)):
        raise SpeedrunError(f"{path}: expected {len(data)} labels in 0–9")
    return data, labels.astype(np.int64)


def read_cifar10(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_x, train_y, test_x, test_y) from a `cifar-10-batches-py` folder; x is N×3×32×32 uint8."""
    train = [_read_batch(folder / name) for name in TRAIN_FILES]
    test_x, test_y = _read_batch(folder / TEST_FILE)
    train_x = np.concatenate([x for x, _ in train]).reshape(-1, 3, 32, 32)
    train_y = np.concatenate([y for _, y in train])
    return train_x, train_y, test_x.reshape(-1, 3, 32, 32), test_y


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in (*TRAIN_FILES, TEST_FILE))


def _download(data_dir: Path) -> None:
    from torchvision.datasets.utils import download_and_extract_archive

    download_and_extract_archive(URL, download_root=str(data_dir), md5=MD5)


def locate_cifar10(data_dir: str | Path, *, download: bool = True) -> Path:
    """The `cifar-10-batches-py` folder under `data_dir` (or `data_dir` itself), downloading when missing."""
    data_dir = Path(data_dir).expanduser()
    for folder in (data_dir / FOLDER, data_dir):
        if _complete(folder):
            return folder
    if download:
        try:
            _download(data_dir)
        except Exception as exc:  # offline, DNS, HTTP errors, a full disk: all mean "no data"
            reason = f"the download failed ({type(exc).__name__}: {exc})"
        else:
            if _complete(data_dir / FOLDER):
                return data_dir / FOLDER
            reason = "the download did not produce it"
    else:
        reason = "downloading is disabled"
    raise SpeedrunError(
        f"CIFAR-10 not found: looked for {data_dir / FOLDER} and {reason}. "
        "Point --data-dir at a folder that holds cifar-10-batches-py, or prepare a local copy "
        "(for example: python ../shared/data/cifar10/prepare.py ./data)."
    )


def val_subset_indices(n_test: int, size: int) -> np.ndarray:
    """The test images `--val-subset size` evaluates: a fixed, seeded choice, in the test set's order."""
    if size > n_test:
        raise SpeedrunError(f"--val-subset {size} is larger than the {n_test} test images")
    return np.sort(np.random.default_rng(VAL_SUBSET_SEED).permutation(n_test)[:size])


def load_cifar10(
    data_dir: str | Path, device: torch.device | str, *, subset: int | None = None,
    val_subset: int | None = None, download: bool = True
) -> Cifar10:
    """Read CIFAR-10 and move it to `device` once; `subset` keeps the first N training images,
    `val_subset` a fixed, seeded N of the test images (`val_subset_indices`)."""
    train_x, train_y, test_x, test_y = read_cifar10(locate_cifar10(data_dir, download=download))
    if subset is not None:
        if subset > len(train_x):
            raise SpeedrunError(f"--subset {subset} is larger than the {len(train_x)} training images")
        train_x, train_y = train_x[:subset], train_y[:subset]
    if val_subset is not None:
        keep = val_subset_indices(len(test_x), val_subset)
        test_x, test_y = test_x[keep], test_y[keep]

    def images(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x).to(device).contiguous(memory_format=torch.channels_last)

    def labels(y: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(y).to(device)

    return Cifar10(images(train_x), labels(train_y), images(test_x), labels(test_y))


def write_synthetic_cifar10(data_dir: str | Path, n_train: int = 64, n_test: int = 32, seed: int = 0) -> Path:
    """A tiny fake `cifar-10-batches-py` folder in the standard layout, for tests and demos.

    Each class gets its own mean colour so that a model can learn something in a few steps.
    """
    rng = np.random.default_rng(seed)
    folder = Path(data_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)

    def batch(n: int) -> dict:
        labels = rng.integers(0, 10, size=n)
        base = (labels[:, None] * 25).astype(np.int16)
        data = np.clip(base + rng.integers(-20, 20, size=(n, ROW)), 0, 255).astype(np.uint8)
        return {"batch_label": "synthetic", "labels": labels.tolist(), "data": data,
                "filenames": [f"img{i}.png" for i in range(n)]}

    sizes = np.array_split(np.arange(n_train), len(TRAIN_FILES))
    for name, part in zip(TRAIN_FILES, sizes):
        with (folder / name).open("wb") as f:
            pickle.dump(batch(len(part)), f)
    with (folder / TEST_FILE).open("wb") as f:
        pickle.dump(batch(n_test), f)
    return folder
