"""Broken and hostile data sets: each is a LoadError naming the file and cause, or a documented recovery."""
import gzip
import pickle

import numpy as np
import pytest
from PIL import Image

from tests.core.test_datasets import (
    cifar_batch_dict,
    idx_bytes,
    random_digits,
    write_cifar_binary,
    write_cifar_python,
    write_idx_pair,
)
from visualizer.core.datasets import load_dataset
from visualizer.core.errors import LoadError


def refused(spec, *words, path=None):
    with pytest.raises(LoadError) as e:
        load_dataset(spec)
    err = e.value
    assert err.hint, "every LoadError carries a hint"
    assert err.path == str(path or spec) and str(path or spec) in str(err)
    for w in words:
        assert w in str(err).lower(), str(err)
    return err


class CreatesFile:
    """A pickle payload that, if unpickled without restriction, creates ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


# ---------------------------------------------------------------- image folders


def test_empty_folder(tmp_path):
    refused(tmp_path, "no data set")


def test_bundled_mnist_missing_is_a_load_error_with_a_hint(tmp_path, monkeypatch):
    import visualizer.core.resources as resources
    monkeypatch.setattr(resources, "resources_dir", lambda: tmp_path)
    with pytest.raises(LoadError) as e:
        load_dataset("mnist")
    assert str(tmp_path) in str(e.value) and "missing" in e.value.problem and "reinstall" in e.value.hint


def test_bundled_mnist_truncated_is_a_load_error(tmp_path, monkeypatch, mnist_dir):
    import visualizer.core.resources as resources
    (tmp_path / "data").mkdir()
    images = gzip.decompress((mnist_dir / "t10k-images-idx3-ubyte.gz").read_bytes())
    (tmp_path / "data" / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(images[: len(images) // 2]))
    (tmp_path / "data" / "t10k-labels-idx1-ubyte.gz").write_bytes((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())
    monkeypatch.setattr(resources, "resources_dir", lambda: tmp_path)
    with pytest.raises(LoadError) as e:
        load_dataset("mnist")
    assert "bundled MNIST file is damaged" in e.value.problem and "7,840,000 bytes" in e.value.problem
    assert "reinstall" in e.value.hint


def test_nonexistent_path(tmp_path):
    refused(tmp_path / "nothing-here", "no such file")


def test_folder_with_one_class_is_refused(tmp_path):
    (tmp_path / "only").mkdir()
    for i in range(3):
        Image.new("L", (8, 8), i * 40).save(tmp_path / "only" / f"{i}.png")
    refused(tmp_path, "at least 2 classes")


def test_class_folders_without_files(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    refused(tmp_path, "no files")


def test_unreadable_image_is_skipped_and_reported(tmp_path):
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(2):
            Image.new("RGB", (8, 8), (i * 100, 0, 0)).save(tmp_path / c / f"{i}.png")
    (tmp_path / "a" / "broken.png").write_text("not really a png")
    png = (tmp_path / "b" / "0.png").read_bytes()
    (tmp_path / "b" / "cut.png").write_bytes(png[: len(png) // 2])
    ds = load_dataset(tmp_path)
    assert len(ds) == 4 and np.bincount(ds.labels).tolist() == [2, 2]
    assert len(ds.skipped) == 2
    assert any(s.startswith("a/broken.png: ") for s in ds.skipped)
    assert any(s.startswith("b/cut.png: ") for s in ds.skipped)


def test_class_with_no_readable_image_is_left_out_and_reported(tmp_path):
    for c in ("a", "b", "c"):
        (tmp_path / c).mkdir()
    for c in ("a", "c"):
        Image.new("L", (8, 8), 9).save(tmp_path / c / "ok.png")
    (tmp_path / "b" / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    ds = load_dataset(tmp_path)
    assert ds.class_names == ("a", "c") and set(ds.labels) == {0, 1}  # no gap where b was
    assert any(s.startswith("b/: ") for s in ds.skipped)


def test_bomb_in_a_folder_is_skipped(tmp_path):
    import struct
    import zlib

    from tests.robustness.test_bad_images import png_chunk
    for c, side in (("a", 8), ("b", 16)):  # sizes tie, and the bomb sorts first in a/
        (tmp_path / c).mkdir()
        Image.new("L", (side, side), 9).save(tmp_path / c / "ok.png")
    ihdr = struct.pack(">IIBBBBB", 10_000, 10_000, 8, 0, 0, 0, 0)
    (tmp_path / "a" / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
                                              + png_chunk(b"IDAT", zlib.compress(b"\0")) + png_chunk(b"IEND", b""))
    ds = load_dataset(tmp_path)
    assert len(ds) == 2 and ds.native_shape[1:] in ((8, 8), (16, 16))  # the bomb's size did not become everyone's
    assert any(s.startswith("a/bomb.png") for s in ds.skipped)


# ---------------------------------------------------------------- IDX


def test_idx_with_wrong_magic_number(tmp_path):
    p = tmp_path / "x-images-idx3-ubyte"
    p.write_bytes(b"\x12\x34\x08\x03" + b"\0" * 20)
    refused(p, "magic")


def test_idx_with_unsupported_type(tmp_path):
    p = tmp_path / "x-images-idx3-ubyte"
    p.write_bytes(bytes([0, 0, 0x0D, 3]) + b"\0\0\0\1" * 3 + b"\0" * 4)
    refused(p, "data type")


def test_idx_images_and_labels_of_different_lengths(tmp_path):
    images, labels = random_digits(10)
    ip, _ = write_idx_pair(tmp_path, images, labels[:7])
    err = refused(ip, "10 images", "7 labels")
    assert "do not belong together" in err.hint


def test_idx_truncated_data(tmp_path):
    images, _ = random_digits(5)
    p = tmp_path / "t-images-idx3-ubyte"
    p.write_bytes(idx_bytes(images)[:-100])
    refused(p, "truncated")


def test_idx_without_its_labels_file(tmp_path):
    images, labels = random_digits(5)
    ip, lp = write_idx_pair(tmp_path, images, labels)
    lp.unlink()
    err = refused(ip, "no labels file")
    assert "labels-idx1" in err.problem


def test_gz_that_is_not_gzip(tmp_path):
    images, labels = random_digits(5)
    ip, _ = write_idx_pair(tmp_path, images, labels, gz=True)
    ip.write_bytes(idx_bytes(images))  # raw bytes under a .gz name
    refused(ip, "not gzip")


def test_truncated_gzip(tmp_path):
    images, labels = random_digits(50)
    ip, _ = write_idx_pair(tmp_path, images, labels, gz=True)
    data = ip.read_bytes()
    ip.write_bytes(data[: len(data) // 2])
    refused(ip, "gzip")


# ---------------------------------------------------------------- CIFAR-10


def test_cifar_batch_with_code_running_reduce_is_refused(tmp_path):
    armed, marker = tmp_path / "proof-it-runs", tmp_path / "pwned"
    # Prove the payload is live: plain pickle would run it.
    pickle.loads(pickle.dumps({b"data": CreatesFile(armed)}, protocol=2))
    assert armed.exists()

    batch = cifar_batch_dict(4)
    batch[b"labels"] = CreatesFile(marker)
    p = tmp_path / "data_batch_1"
    p.write_bytes(pickle.dumps(batch, protocol=2))
    refused(p, "refused")
    assert not marker.exists()


def test_malicious_batch_among_good_ones_is_skipped_and_reported(tmp_path):
    write_cifar_python(tmp_path, batches=1, n=10)
    marker = tmp_path / "pwned"
    (tmp_path / "data_batch_2").write_bytes(pickle.dumps(CreatesFile(marker), protocol=4))
    ds = load_dataset(tmp_path)
    assert len(ds) == 10 and not marker.exists()
    assert len(ds.skipped) == 1 and ds.skipped[0].startswith("data_batch_2: ")


def test_malicious_meta_file_does_not_run(tmp_path):
    write_cifar_python(tmp_path, batches=1, n=10)
    marker = tmp_path / "pwned"
    (tmp_path / "batches.meta").write_bytes(pickle.dumps({b"label_names": CreatesFile(marker)}))
    ds = load_dataset(tmp_path)
    assert not marker.exists() and ds.class_names[0] == "airplane"  # names fall back, data still loads


def test_cifar_batch_with_wrong_array_shape(tmp_path):
    batch = cifar_batch_dict(4)
    batch[b"data"] = np.zeros((4, 100), np.uint8)
    p = tmp_path / "data_batch_1"
    p.write_bytes(pickle.dumps(batch, protocol=2))
    refused(p, "3072")


def test_cifar_batch_with_wrong_dtype_or_label_count(tmp_path):
    batch = cifar_batch_dict(4)
    batch[b"data"] = batch[b"data"].astype(np.float64)
    p = tmp_path / "data_batch_1"
    p.write_bytes(pickle.dumps(batch))
    refused(p, "float64")
    batch = cifar_batch_dict(4)
    batch[b"labels"] = [0, 1]
    p.write_bytes(pickle.dumps(batch))
    refused(p, "4 images")


def test_cifar_pickle_that_is_not_a_dict_or_is_truncated(tmp_path):
    p = tmp_path / "test_batch"
    p.write_bytes(pickle.dumps([1, 2, 3]))
    refused(p, "not a cifar batch")
    data = pickle.dumps(cifar_batch_dict(4))
    p.write_bytes(data[: len(data) // 2])
    refused(p, "not a readable cifar pickle")


def test_cifar_binary_of_the_wrong_size(tmp_path):
    write_cifar_binary(tmp_path, n=3)
    p = tmp_path / "data_batch_1.bin"
    p.write_bytes(p.read_bytes()[:-10])
    refused(p, "3073-byte")


def test_cifar_folder_of_only_bad_batches(tmp_path):
    (tmp_path / "data_batch_1").write_bytes(b"\x80\x04garbage")
    (tmp_path / "data_batch_2").write_bytes(b"")
    err = refused(tmp_path, "no readable cifar batch")
    assert "data_batch_1" in err.problem and "data_batch_2" in err.problem


def test_unrecognised_file(tmp_path):
    p = tmp_path / "random.dat"
    p.write_bytes(np.random.default_rng(0).integers(1, 255, 64, dtype=np.uint8).tobytes())
    refused(p, "not a data set format")


def test_gzip_named_file_with_garbage_inside(tmp_path):
    p = tmp_path / "t10k-images-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(b"hello world, not idx"))
    refused(p, "magic")
