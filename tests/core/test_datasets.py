"""Data set readers on small files written in the real formats, the built-ins, and prepare()."""
import gzip
import pickle
import struct
import time

import numpy as np
import pytest
import torch
from PIL import Image

from visualizer.core.datasets import BUILTIN_DATASETS, Augment, DataOptions, ImageDataset, load_dataset, prepare
from visualizer.core.errors import LoadError

# ---------------------------------------------------------------- writers of the real formats


def idx_bytes(a: np.ndarray) -> bytes:
    a = np.ascontiguousarray(a, dtype=np.uint8)
    return bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()


def write_idx_pair(folder, images, labels, prefix="train", gz=True, sep="-"):
    """MNIST-style pair: <prefix>-images-idx3-ubyte[.gz] and <prefix>-labels-idx1-ubyte[.gz]."""
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    ip = folder / f"{prefix}-images{sep}idx3-ubyte{ext}"
    lp = folder / f"{prefix}-labels{sep}idx1-ubyte{ext}"
    for path, arr in ((ip, images), (lp, labels)):
        data = idx_bytes(arr)
        path.write_bytes(gzip.compress(data) if gz else data)
    return ip, lp


def random_digits(n=30, h=28, w=28, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, h, w), dtype=np.uint8), (np.arange(n) % classes).astype(np.uint8)


def cifar_batch_dict(n=20, seed=0):
    """The layout of a real CIFAR-10 python batch (py2 str keys arrive as bytes)."""
    rng = np.random.default_rng(seed)
    return {b"batch_label": b"training batch 1 of 5",
            b"labels": [int(v) for v in np.arange(n) % 10],
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"filenames": [f"img_{i}.png".encode() for i in range(n)]}


def write_cifar_python(folder, batches=2, n=20, protocol=2):
    folder.mkdir(parents=True, exist_ok=True)
    dicts = []
    for b in range(batches):
        d = cifar_batch_dict(n, seed=b)
        (folder / f"data_batch_{b + 1}").write_bytes(pickle.dumps(d, protocol=protocol))
        dicts.append(d)
    names = [f"class{i}".encode() for i in range(10)]
    meta = {b"num_cases_per_batch": n, b"label_names": names, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=protocol))
    return dicts


def write_cifar_binary(folder, n=15, seed=0, name="data_batch_1.bin"):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 10).astype(np.uint8)
    pixels = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    (folder / name).write_bytes(np.concatenate([labels[:, None], pixels], axis=1).tobytes())
    return labels, pixels


def write_image_folder(root, per_class=4, classes=("cat", "dog"), size=(12, 10)):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            a = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            ext = "png" if i % 2 == 0 else "jpg"
            Image.fromarray(a).save(root / c / f"{i}.{ext}")
    return root


# ---------------------------------------------------------------- built-ins


def test_builtin_names_are_described():
    assert {"digits", "shapes", "mnist"} <= set(BUILTIN_DATASETS)
    assert all(isinstance(v, str) and v for v in BUILTIN_DATASETS.values())


def test_digits_are_the_1797_real_uci_digits():
    ds = load_dataset("digits")
    assert len(ds) == 1797 and ds.native_shape == (1, 8, 8)
    assert ds.images.dtype == np.uint8 and ds.labels.dtype == np.int64
    assert ds.class_names == tuple(str(i) for i in range(10))
    assert set(np.unique(ds.labels)) == set(range(10))
    assert ds.images.max() == 255 and ds.images.min() == 0      # 0..16 scaled to the full byte range
    assert not ds.images.flags.writeable and not ds.labels.flags.writeable
    # The first UCI digit is a 0: a ring of ink around an empty centre.
    assert ds.labels[0] == 0 and ds.images[0, 0, 3:5, 3:5].mean() < ds.images[0, 0, :, 1:3].mean()


def test_limit_keeps_a_seeded_random_subset_of_several_classes():
    a, b = load_dataset("digits", limit=50, seed=1), load_dataset("digits", limit=50, seed=1)
    c = load_dataset("digits", limit=50, seed=2)
    assert len(a) == 50 and np.array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)
    assert len(np.unique(a.labels)) >= 5


def test_shapes_are_rgb_deterministic_per_seed_and_balanced():
    a = load_dataset("shapes", seed=3, limit=300)
    b = load_dataset("shapes", seed=3, limit=300)
    c = load_dataset("shapes", seed=4, limit=300)
    assert a.native_shape == (3, 32, 32) and len(a) == 300
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)
    assert len(a.class_names) >= 5 and {"circle", "square", "triangle", "cross", "stripes"} <= set(a.class_names)
    counts = a.class_counts()
    assert counts.min() >= 300 // len(a.class_names)
    # Colour really varies: the three channels are not copies of one another.
    x = a.images.astype(np.float32)
    assert np.abs(x[:, 0] - x[:, 1]).mean() > 20


def test_shapes_generate_fast_enough():
    t = time.perf_counter()
    ds = load_dataset("shapes")
    assert len(ds) >= 3000
    assert time.perf_counter() - t < 3.0  # ~0.4 s alone; slack for the shared CI cores


def test_shape_classes_are_learnable_by_a_tiny_cnn():
    """Distinguishable classes: a few epochs of a tiny CNN beat chance (1/6) by far."""
    torch.manual_seed(0)
    ds = load_dataset("shapes", seed=0, limit=900)
    data = prepare(ds, DataOptions((3, 32, 32), val_fraction=0.2))
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.BatchNorm2d(32), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveMaxPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(32, len(ds.class_names)))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loader = torch.utils.data.DataLoader(data.train, batch_size=32, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    for _ in range(7):
        for x, y in loader:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    model.eval()
    x, y = next(iter(torch.utils.data.DataLoader(data.val, batch_size=len(data.val))))
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    assert acc > 0.5  # ~0.7 here; chance is 0.17


def test_builtin_mnist_is_the_shipped_test_split(mnist_dir):
    t = time.perf_counter()
    ds = load_dataset("mnist")
    elapsed = time.perf_counter() - t
    assert len(ds) == 10_000 and ds.native_shape == (1, 28, 28) and ds.name == "mnist"
    assert ds.source == str(mnist_dir / "t10k-images-idx3-ubyte.gz")   # the shipped file, not ../shared
    assert np.bincount(ds.labels).tolist()[:2] == [980, 1135]  # the published class counts
    assert elapsed < 3.0  # ~0.03 s alone


def test_mnist_files_by_path_match_the_builtin(mnist_dir):
    by_file = load_dataset(mnist_dir / "t10k-images-idx3-ubyte.gz", limit=100)
    by_folder = load_dataset(mnist_dir, limit=100)
    assert np.array_equal(by_file.images, by_folder.images)
    assert by_file.class_names == tuple(str(i) for i in range(10))


# ---------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [True, False])
def test_idx_pair_gz_and_raw(tmp_path, gz):
    images, labels = random_digits(30)
    ip, _ = write_idx_pair(tmp_path, images, labels, gz=gz)
    ds = load_dataset(ip)
    assert ds.native_shape == (1, 28, 28) and len(ds) == 30
    assert np.array_equal(ds.images[:, 0], images) and np.array_equal(ds.labels, labels)
    assert ds.class_names == tuple(str(i) for i in range(10)) and ds.source == str(ip)


def test_idx_folder_concatenates_pairs_train_first(tmp_path):
    tr, trl = random_digits(12, seed=1)
    te, tel = random_digits(7, seed=2)
    write_idx_pair(tmp_path, te, tel, prefix="t10k")
    write_idx_pair(tmp_path, tr, trl, prefix="train", gz=False)
    ds = load_dataset(tmp_path)
    assert len(ds) == 19
    assert np.array_equal(ds.images[:12, 0], tr) and np.array_equal(ds.images[12:, 0], te)


def test_idx_dot_spelling_and_fashion_names(tmp_path):
    images, labels = random_digits(10, h=5, w=6)
    ip, _ = write_idx_pair(tmp_path / "fashion", images, labels, sep=".")
    ds = load_dataset(ip)
    assert ds.native_shape == (1, 5, 6)
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"


# ---------------------------------------------------------------- CIFAR-10


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_cifar_python_folder(tmp_path, protocol):
    dicts = write_cifar_python(tmp_path, batches=2, n=20, protocol=protocol)
    ds = load_dataset(tmp_path)
    assert len(ds) == 40 and ds.native_shape == (3, 32, 32) and ds.skipped == ()
    assert ds.class_names == tuple(f"class{i}" for i in range(10))
    # Row-major 3072 = R plane, G plane, B plane of 32x32.
    first = dicts[0][b"data"][0]
    assert np.array_equal(ds.images[0, 1].ravel(), first[1024:2048])
    assert np.array_equal(ds.labels[:20], dicts[0][b"labels"])


def test_cifar_single_batch_file(tmp_path):
    dicts = write_cifar_python(tmp_path, batches=1, n=12)
    ds = load_dataset(tmp_path / "data_batch_1")
    assert len(ds) == 12 and np.array_equal(ds.images.reshape(12, -1), dicts[0][b"data"])


def test_cifar_binary_format(tmp_path):
    labels, pixels = write_cifar_binary(tmp_path, n=15)
    (tmp_path / "batches.meta.txt").write_text("\n".join(f"name{i}" for i in range(10)) + "\n")
    ds = load_dataset(tmp_path / "data_batch_1.bin")
    assert len(ds) == 15 and np.array_equal(ds.labels, labels)
    assert np.array_equal(ds.images.reshape(15, -1), pixels)
    assert ds.class_names[3] == "name3"


def test_cifar_binary_folder_defaults_to_cifar10_names(tmp_path):
    write_cifar_binary(tmp_path, n=10, name="data_batch_1.bin")
    write_cifar_binary(tmp_path, n=5, seed=1, name="test_batch.bin")
    ds = load_dataset(tmp_path)
    assert len(ds) == 15 and ds.class_names[0] == "airplane"


# ---------------------------------------------------------------- image folders


def test_image_folder_png_and_jpeg(tmp_path):
    write_image_folder(tmp_path / "pets", per_class=4)
    ds = load_dataset(tmp_path / "pets")
    assert ds.class_names == ("cat", "dog") and len(ds) == 8 and ds.skipped == ()
    assert ds.native_shape == (3, 10, 12)
    assert np.bincount(ds.labels).tolist() == [4, 4]


def test_image_folder_mixed_sizes_and_modes_share_one_shape(tmp_path):
    root = tmp_path / "mixed"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    Image.new("L", (20, 20), 200).save(root / "a" / "gray.png")
    Image.new("L", (20, 20), 50).save(root / "a" / "gray2.png")
    Image.new("RGB", (40, 30), (255, 0, 0)).save(root / "b" / "red.png")
    ds = load_dataset(root)
    assert ds.native_shape == (3, 20, 20)  # most common size; any colour image makes it RGB
    gray = ds.images[ds.labels == 0][0]
    assert np.all(gray == 200) or np.all(gray == 50)
    red = ds.images[ds.labels == 1][0]
    assert red[0].min() == 255 and red[1].max() == 0


def test_image_folder_shrinks_large_images(tmp_path):
    root = tmp_path / "big"
    for c in "xy":
        (root / c).mkdir(parents=True)
        Image.new("RGB", (600, 400), (10, 20, 30)).save(root / c / "p.png")
    ds = load_dataset(root)
    assert ds.native_shape == (3, 149, 224)  # aspect kept, longest side 224


def test_unknown_name_is_a_load_error():
    with pytest.raises(LoadError) as e:
        load_dataset("no-such-dataset")
    assert "no-such-dataset" in str(e.value) and e.value.hint


# ---------------------------------------------------------------- ImageDataset


def test_image_dataset_validates_its_arrays():
    with pytest.raises(ValueError):
        ImageDataset("x", np.zeros((2, 2, 4, 4), np.uint8), np.zeros(2, np.int64), ("a", "b"))
    with pytest.raises(ValueError):
        ImageDataset("x", np.zeros((2, 1, 4, 4), np.uint8), np.array([0, 2]), ("a", "b"))
    with pytest.raises(ValueError):
        ImageDataset("x", np.zeros((2, 1, 4, 4), np.float32), np.array([0, 1]), ("a", "b"))


# ---------------------------------------------------------------- prepare


def test_prepare_resizes_normalises_and_splits_digits():
    ds = load_dataset("digits")
    data = prepare(ds, DataOptions((1, 32, 32), val_fraction=0.1, seed=0))
    assert data.input_shape == (1, 32, 32) and data.class_names == ds.class_names
    assert len(data.train) + len(data.val) == 1797 and len(data.val) == pytest.approx(180, abs=6)
    assert any("8x8 to 32x32" in n for n in data.notes)
    x, y = data.train[0]
    assert x.shape == (1, 32, 32) and x.dtype == torch.float32 and isinstance(y, int)
    # Stratified: every class in both splits, in proportion.
    assert set(np.unique(data.labels("val"))) == set(range(10))
    # Normalised with the training split's own statistics: mean ~0, std ~1 there.
    xs = torch.stack([data.train[i][0] for i in range(len(data.train))])
    assert abs(xs.mean().item()) < 1e-3 and xs.std().item() == pytest.approx(1.0, abs=1e-2)


def test_prepare_split_is_disjoint_and_seeded():
    ds = load_dataset("digits", limit=400)
    a = prepare(ds, DataOptions((1, 8, 8), val_fraction=0.25, seed=5))
    b = prepare(ds, DataOptions((1, 8, 8), val_fraction=0.25, seed=5))
    c = prepare(ds, DataOptions((1, 8, 8), val_fraction=0.25, seed=6))
    assert set(a.train.indices).isdisjoint(a.val.indices)
    assert len(a.train.indices) + len(a.val.indices) == 400
    assert np.array_equal(a.val.indices, b.val.indices) and not np.array_equal(a.val.indices, c.val.indices)
    none = prepare(ds, DataOptions((1, 8, 8), val_fraction=0.0))
    assert len(none.val) == 0 and len(none.train) == 400
    with pytest.raises(ValueError):
        prepare(ds, DataOptions((1, 8, 8), val_fraction=1.0))


def test_sample_is_unnormalised_and_normalise_matches_items():
    data = prepare(load_dataset("digits", limit=200), DataOptions((1, 16, 16)))
    img01, label = data.sample(3, split="val")
    assert img01.shape == (1, 16, 16) and img01.dtype == np.float32
    assert 0.0 <= img01.min() and img01.max() <= 1.0 and img01.max() > 0.5
    x, y = data.val[3]
    assert y == label
    np.testing.assert_allclose(data.normalise(img01), x.numpy(), atol=1e-5)


def test_given_mean_and_std_are_used_and_broadcast():
    data = prepare(load_dataset("shapes", limit=60), DataOptions((3, 32, 32), mean=(0.5,), std=(0.25,)))
    assert data.mean == (0.5, 0.5, 0.5) and data.std == (0.25, 0.25, 0.25)
    img01, _ = data.sample(0)
    np.testing.assert_allclose(data.val[0][0].numpy(), (img01 - 0.5) / 0.25, atol=1e-5)


def test_augmentation_changes_train_items_but_not_val():
    data = prepare(load_dataset("digits", limit=200),
                   DataOptions((1, 32, 32), augment=Augment(rotation=20, translation=0.1, scale=0.1, hflip=True)))
    a, b = data.train[0][0], data.train[0][0]
    assert not torch.equal(a, b)
    assert torch.equal(data.val[0][0], data.val[0][0])
    plain = data.normalise(data.sample(0, split="train")[0])
    assert not np.allclose(a.numpy(), plain)


def test_augmentation_is_deterministic_given_the_seeds():
    ds = load_dataset("digits", limit=200)
    opts = DataOptions((1, 16, 16), augment=Augment(rotation=15, translation=0.1), seed=3)

    def first_batch():
        data = prepare(ds, opts)
        loader = torch.utils.data.DataLoader(data.train, batch_size=32, shuffle=True,
                                             generator=torch.Generator().manual_seed(9))
        return next(iter(loader))

    (x1, y1), (x2, y2) = first_batch(), first_batch()
    assert prepare(ds, opts).train.generator().initial_seed() == 3
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and y1.dtype == torch.int64 and x1.shape == (32, 1, 16, 16)


def test_hflip_only_mirrors():
    img = np.zeros((1, 1, 8, 8), np.uint8)
    img[0, 0, :, 0] = 255  # a bright left column
    ds = ImageDataset("edge", np.repeat(img, 2, 0), np.array([0, 1]), ("a", "b"))
    data = prepare(ds, DataOptions((1, 8, 8), mean=(0.0,), std=(1.0,), val_fraction=0.0, augment=Augment(hflip=True)))
    seen = {tuple(data.train[0][0][0, 0].round().int().tolist()) for _ in range(20)}
    assert seen == {(1, 0, 0, 0, 0, 0, 0, 0), (0, 0, 0, 0, 0, 0, 0, 1)}


def test_channel_conversion_in_prepare():
    gray = ImageDataset("g", np.full((4, 1, 4, 4), 100, np.uint8), np.array([0, 1, 0, 1]), ("a", "b"))
    rgb3 = prepare(gray, DataOptions((3, 4, 4), mean=(0.0,), std=(1.0,)))
    assert rgb3.train[0][0].shape == (3, 4, 4)
    assert torch.allclose(rgb3.train[0][0], torch.full((3, 4, 4), 100 / 255))
    assert any("repeated" in n for n in rgb3.notes)

    rgb = np.zeros((4, 3, 4, 4), np.uint8)
    rgb[:, 1] = 255  # pure green
    to_gray = prepare(ImageDataset("c", rgb, np.array([0, 1, 0, 1]), ("a", "b")),
                      DataOptions((1, 4, 4), mean=(0.0,), std=(1.0,)))
    assert torch.allclose(to_gray.train[0][0], torch.full((1, 4, 4), 0.587), atol=3e-3)
    assert any("luminance" in n for n in to_gray.notes)
