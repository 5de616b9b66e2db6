import pickle

import numpy as np
import pytest
import torch

from speedrun.errors import SpeedrunError
from speedrun.training import data as data_module
from speedrun.training.data import FOLDER, load_cifar10, locate_cifar10, read_cifar10, write_synthetic_cifar10


def test_synthetic_folder_loads_as_uint8_nchw_channels_last(tmp_path):
    folder = write_synthetic_cifar10(tmp_path, n_train=64, n_test=32)
    data = load_cifar10(tmp_path, "cpu", download=False)
    assert data.train_images.shape == (64, 3, 32, 32) and data.test_images.shape == (32, 3, 32, 32)
    assert data.train_images.dtype == torch.uint8 and data.train_labels.dtype == torch.int64
    assert data.train_images.is_contiguous(memory_format=torch.channels_last)
    # Row layout: R plane, G plane, B plane of each image, labels in file order.
    with (folder / "data_batch_1").open("rb") as f:
        first = pickle.load(f, encoding="latin1")
    assert torch.equal(data.train_images[0].reshape(-1), torch.from_numpy(first["data"][0]))
    assert data.train_labels[0].item() == first["labels"][0]


def test_subset_keeps_the_first_images(tmp_path):
    write_synthetic_cifar10(tmp_path, n_train=64, n_test=32)
    full = load_cifar10(tmp_path, "cpu", download=False)
    part = load_cifar10(tmp_path, "cpu", subset=10, download=False)
    assert torch.equal(part.train_images, full.train_images[:10])
    assert len(part.test_labels) == 32  # validation always uses the whole test set
    with pytest.raises(SpeedrunError, match="larger than the 64"):
        load_cifar10(tmp_path, "cpu", subset=65, download=False)


def test_folder_itself_is_accepted(tmp_path):
    folder = write_synthetic_cifar10(tmp_path)
    assert locate_cifar10(folder, download=False) == folder


def _rewrite(folder, name, **changes):
    with (folder / name).open("rb") as f:
        entry = pickle.load(f, encoding="latin1")
    entry.update(changes)
    with (folder / name).open("wb") as f:
        pickle.dump(entry, f)


def test_wrong_shape_is_rejected(tmp_path):
    folder = write_synthetic_cifar10(tmp_path)
    _rewrite(folder, "data_batch_2", data=np.zeros((12, 1000), dtype=np.uint8))
    with pytest.raises(SpeedrunError, match="data_batch_2.*3072 uint8"):
        read_cifar10(folder)


def test_labels_outside_0_to_9_are_rejected(tmp_path):
    folder = write_synthetic_cifar10(tmp_path, n_test=4)
    _rewrite(folder, "test_batch", labels=[0, 1, 2, 10])
    with pytest.raises(SpeedrunError, match="test_batch.*labels in 0–9"):
        read_cifar10(folder)


def test_missing_and_offline_gives_one_clear_error(tmp_path, monkeypatch):
    def offline(data_dir):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(data_module, "_download", offline)
    with pytest.raises(SpeedrunError) as err:
        load_cifar10(tmp_path / "nowhere", "cpu")
    message = str(err.value)
    assert str(tmp_path / "nowhere" / FOLDER) in message
    assert "--data-dir" in message
    assert "prepare.py" in message
    assert "name resolution" in message


def test_missing_data_is_downloaded(tmp_path, monkeypatch):
    calls = []

    def fake_download(data_dir):
        calls.append(data_dir)
        write_synthetic_cifar10(data_dir, n_train=20, n_test=10)

    monkeypatch.setattr(data_module, "_download", fake_download)
    data = load_cifar10(tmp_path, "cpu")
    assert calls == [tmp_path] and len(data.train_labels) == 20
