"""Data sets that are laid out or labelled unexpectedly say so: a train/val folder is a split, a deeper
folder is refused, a label outside the classes names its file and index, CIFAR-100 is CIFAR-100."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image

from tests.core.test_datasets import cifar_batch_dict, random_digits, write_cifar_python, write_idx_pair
from visualizer.cli import main
from visualizer.core.datasets import DataOptions, load_dataset, prepare
from visualizer.core.errors import LoadError


def images(folder, n, shade=0):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("L", (8, 8), (shade + 30 * i) % 256).save(folder / f"{i}.png")


def refused(spec, *words):
    with pytest.raises(LoadError) as e:
        load_dataset(spec)
    for w in words:
        assert w in str(e.value), str(e.value)
    assert e.value.hint
    return e.value


# ---- image folders --------------------------------------------------------------------------------
@pytest.mark.parametrize("val_name", ["val", "validation"])
def test_a_train_val_folder_is_a_split_not_two_classes(tmp_path, val_name):
    for split, n in (("train", 5), (val_name, 2)):
        for c in ("cat", "dog", "eel"):
            images(tmp_path / split / c, n, shade=len(c) * 10)
    ds = load_dataset(tmp_path)
    assert ds.class_names == ("cat", "dog", "eel")
    assert int(ds.is_val.sum()) == 6 and len(ds) == 21
    data = prepare(ds, DataOptions(input_shape=(1, 8, 8), val_fraction=0.5))
    assert len(data.train) == 15 and len(data.val) == 6   # the folder's split, not val_fraction's
    assert sorted(np.bincount(data.labels("val")).tolist()) == [2, 2, 2]
    assert any("own split" in n for n in data.notes)


def test_train_on_a_split_folder_reports_its_classes(tmp_path, capsys):
    for split, n in (("train", 6), ("val", 2)):
        for c in ("a", "b"):
            images(tmp_path / "data" / split / c, n, shade=100 if c == "b" else 0)
    out = tmp_path / "run.pt"
    assert main(["train", "--dataset", str(tmp_path / "data"), "--epochs", "1", "--quiet", "--out", str(out)]) == 0
    from visualizer.core.checkpoint import load_model
    assert load_model(out).class_names == ("a", "b")


def test_train_and_val_folders_of_images_are_two_classes(tmp_path):
    images(tmp_path / "train", 3)
    images(tmp_path / "val", 3, shade=128)
    ds = load_dataset(tmp_path)
    assert ds.class_names == ("train", "val") and ds.is_val is None


def test_a_folder_inside_a_class_folder_is_refused_with_the_layout(tmp_path):
    images(tmp_path / "cat", 2)
    images(tmp_path / "dog" / "puppies", 2)
    err = refused(tmp_path, "dog/puppies/", "nested deeper")
    assert "root/<class>/<images>" in err.hint and "root/train/<class>/<images>" in err.hint


def test_a_split_folder_nested_one_level_too_deep_is_refused(tmp_path):
    images(tmp_path / "train" / "cat" / "2024", 2)
    images(tmp_path / "val" / "cat", 2)
    refused(tmp_path, "train/cat/2024/", "nested deeper")


def test_a_split_beside_other_folders_is_refused(tmp_path):
    images(tmp_path / "train" / "cat", 2)
    images(tmp_path / "val" / "cat", 2)
    images(tmp_path / "extra", 2)
    refused(tmp_path, "train/", "val/", "extra/")


# ---- labels outside the classes -------------------------------------------------------------------
def test_an_idx_label_of_255_names_the_labels_file_and_index(tmp_path):
    pics, labels = random_digits(12)
    labels[7] = 255
    ip, lp = write_idx_pair(tmp_path, pics, labels, gz=False)
    err = refused(ip, str(lp), "label 255 at index 7", "10 classes")
    assert err.path == str(lp)


def test_an_idx_set_with_few_classes_present_still_has_ten(tmp_path):
    pics, labels = random_digits(12, classes=3)
    ip, _ = write_idx_pair(tmp_path, pics, labels)
    assert load_dataset(ip).num_classes == 10


@pytest.mark.parametrize("fmt", ["python", "binary"])
def test_a_cifar10_label_over_9_names_the_batch_and_index(tmp_path, fmt):
    batch = cifar_batch_dict(6)
    batch[b"labels"][4] = 12
    if fmt == "python":
        p = tmp_path / "data_batch_1"
        p.write_bytes(pickle.dumps(batch, protocol=2))
    else:
        p = tmp_path / "data_batch_1.bin"
        labels = np.array(batch[b"labels"], dtype=np.uint8)
        p.write_bytes(np.concatenate([labels[:, None], batch[b"data"]], axis=1).tobytes())
    refused(p, str(p), "label 12 at index 4", "CIFAR-10")


def test_a_bad_label_batch_in_a_folder_is_an_error_not_a_skipped_batch(tmp_path):
    write_cifar_python(tmp_path, batches=2, n=10)
    batch = cifar_batch_dict(10)
    batch[b"labels"][0] = 10
    (tmp_path / "data_batch_2").write_bytes(pickle.dumps(batch, protocol=2))
    refused(tmp_path, "data_batch_2", "label 10 at index 0")


# ---- CIFAR-100 ------------------------------------------------------------------------------------
FINE = [f"fine{i:02d}" for i in range(100)]


def cifar100_python(folder, n=250, bad_at=None):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        fine = [int(v) for v in np.arange(n) % 100]
        if bad_at is not None and split == "train":
            fine[bad_at] = 100
        d = {b"filenames": [b"x.png"] * n, b"batch_label": b"training batch 1 of 1", b"fine_labels": fine,
             b"coarse_labels": [v // 5 for v in fine], b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}
        (folder / split).write_bytes(pickle.dumps(d, protocol=2))
    meta = {b"fine_label_names": [s.encode() for s in FINE],
            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)]}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))


def test_cifar100_python_batches_are_read_with_their_100_fine_classes(tmp_path):
    cifar100_python(tmp_path / "cifar-100-python")
    ds = load_dataset(tmp_path / "cifar-100-python")
    assert len(ds) == 500 and ds.num_classes == 100 and ds.class_names == tuple(FINE)
    assert ds.labels.max() == 99
    one = load_dataset(tmp_path / "cifar-100-python" / "test")
    assert len(one) == 250 and one.class_names == tuple(FINE)


def test_cifar100_binary_reads_the_fine_label_byte(tmp_path):
    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    rng = np.random.default_rng(1)
    fine = (np.arange(120) % 100).astype(np.uint8)
    coarse = (fine // 5).astype(np.uint8)
    pixels = rng.integers(0, 256, (120, 3072), dtype=np.uint8)
    (folder / "train.bin").write_bytes(np.concatenate([coarse[:, None], fine[:, None], pixels], axis=1).tobytes())
    (folder / "fine_label_names.txt").write_text("\n".join(FINE) + "\n")
    ds = load_dataset(folder)
    assert ds.num_classes == 100 and ds.class_names[42] == "fine42"
    assert np.array_equal(ds.labels, fine) and np.array_equal(ds.images.reshape(120, -1), pixels)


def test_a_cifar100_label_of_100_names_the_batch_and_index(tmp_path):
    cifar100_python(tmp_path, bad_at=33)
    refused(tmp_path, str(tmp_path / "train"), "label 100 at index 33", "CIFAR-100")

