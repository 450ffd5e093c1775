"""Tests for genlib.data: real files from the shared folder, tiny files written here, no network."""

from __future__ import annotations

import gc
import gzip
import hashlib
import io
import os
import pickle
import re
import struct
import tarfile
import time
import tracemalloc
import types
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlib import data as D
from genlib.data import cifar, download
from genlib.data import folder as F
from genlib.data.toys import load_toy
from genlib.models import make_model

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


# ---------------------------------------------------------------------------------------------
# Helpers that write datasets in their real on-disk formats


def write_idx(path: Path, arr: np.ndarray, *, gz: bool = True) -> Path:
    """An IDX file of uint8 `arr` (magic 0x0000 08 ndim, big-endian dims)."""
    header = bytes([0, 0, 0x08, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    raw = header + arr.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)
    return path


def write_mnist_split(folder: Path, split: str, n: int = 20, *, gz: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Tiny MNIST-format images/labels for `split` in `folder`; returns what was written."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = np.arange(n, dtype=np.uint8) % 10
    prefix = "train" if split == "train" else "t10k"
    write_idx(folder / f"{prefix}-images-idx3-ubyte", images, gz=gz)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, gz=gz)
    return images, labels


CIFAR_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer",
               b"dog", b"frog", b"horse", b"ship", b"truck"]


def write_cifar(folder: Path, n: int = 6, protocol: int = pickle.DEFAULT_PROTOCOL) -> dict[str, np.ndarray]:
    """Small batches in the real cifar-10-batches-py layout; returns each file's labels."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for i, fname in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        labels = (np.arange(n) + i) % 10
        data = np.full((n, 3072), 0, dtype=np.uint8)
        data[:, :1024] = labels[:, None] * 20  # red plane encodes the label
        batch = {b"batch_label": fname.encode(), b"labels": labels.tolist(), b"data": data,
                 b"filenames": [f"{k}.png".encode() for k in range(n)]}
        with (folder / fname).open("wb") as f:
            pickle.dump(batch, f, protocol=protocol)
        written[fname] = labels
    with (folder / "batches.meta").open("wb") as f:
        pickle.dump({b"label_names": CIFAR_NAMES, b"num_cases_per_batch": n}, f, protocol=protocol)
    return written


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Real data from the shared folder


def test_mnist_train_falls_back_to_test_split(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if (shared_data / "MNIST/raw/train-images-idx3-ubyte.gz").exists():
        pytest.skip("this machine has the MNIST training split; nothing to fall back from")
    monkeypatch.setattr(download, "_fetch", _no_network)  # download=None must not go online here
    ds = D.load_dataset("mnist", split="train", root=shared_data)
    assert ds.split == "test"
    assert "test split" in ds.note and str(shared_data / "MNIST" / "raw") in ds.note
    assert len(ds) == 10_000 and ds.shape == (1, 28, 28) and ds.is_image
    assert ds.x.dtype == torch.uint8 and int(ds.x.max()) == 255 and int(ds.x.min()) == 0
    assert ds.y.dtype == torch.int64 and set(ds.y.tolist()) == set(range(10))
    assert ds.class_names == [str(d) for d in range(10)]


@pytest.mark.parametrize("split, n", [("train", 60_000), ("test", 10_000)])
def test_fashion_mnist_both_splits(shared_data: Path, split: str, n: int) -> None:
    from torchvision.datasets import FashionMNIST

    ds = D.load_dataset("fashion-mnist", split=split, root=shared_data, download=False)
    assert (ds.split, len(ds), ds.shape, ds.note) == (split, n, (1, 28, 28), "")
    assert ds.class_names == FashionMNIST.classes and ds.num_classes == 10
    assert set(ds.y.unique().tolist()) == set(range(10))


def _no_network(*args: object, **kwargs: object) -> None:
    raise AssertionError("tried to download")


# ---------------------------------------------------------------------------------------------
# IDX parsing


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_round_trip(tmp_path: Path, gz: bool) -> None:
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / "x-idx3-ubyte", arr, gz=gz)
    np.testing.assert_array_equal(D.read_idx(path), arr)


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_from_tiny_files(tmp_path: Path, gz: bool) -> None:
    images, labels = write_mnist_split(tmp_path / "MNIST" / "raw", "test", gz=gz)
    ds = D.load_dataset("mnist", split="test", root=tmp_path, download=False)
    np.testing.assert_array_equal(ds.x[:, 0].numpy(), images)
    assert ds.y.tolist() == labels.tolist() and ds.note == ""


@pytest.mark.hostile(2)
def test_read_idx_rejects_bad_magic_and_truncation(tmp_path: Path) -> None:
    bad = tmp_path / "bad-idx3-ubyte"
    bad.write_bytes(b"\x12\x34\x08\x01" + bytes(8))
    with pytest.raises(ValueError, match="magic"):
        D.read_idx(bad)
    short = write_idx(tmp_path / "short", np.zeros((4, 4), np.uint8), gz=False)
    short.write_bytes(short.read_bytes()[:-3])
    with pytest.raises(ValueError, match="truncated"):
        D.read_idx(short)


# ---------------------------------------------------------------------------------------------
# CIFAR-10 pickles


@pytest.mark.parametrize("protocol", [2, pickle.DEFAULT_PROTOCOL])
def test_cifar_loads_real_format(tmp_path: Path, protocol: int) -> None:
    labels = write_cifar(tmp_path / "cifar-10-batches-py", n=6, protocol=protocol)
    train = D.load_dataset("cifar10", split="train", root=tmp_path, download=False)
    assert len(train) == 30 and train.shape == (3, 32, 32) and train.x.dtype == torch.uint8
    expected = np.concatenate([labels[f"data_batch_{k}"] for k in range(1, 6)])
    assert train.y.tolist() == expected.tolist()
    assert (train.x[:, 0, 0, 0] == train.y * 20).all() and (train.x[:, 1:] == 0).all()
    assert train.class_names == [n.decode() for n in CIFAR_NAMES]
    test = D.load_dataset("cifar10", split="test", root=tmp_path, download=False)
    assert test.y.tolist() == labels["test_batch"].tolist()


class _Hostile:
    """Unpickling this calls open(marker, 'w'), i.e. runs code chosen by the file's author."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.hostile
def test_cifar_refuses_hostile_pickle(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    marker = tmp_path / "pwned"
    payload = pickle.dumps({b"data": _Hostile(marker), b"labels": [0]}, protocol=2)
    (folder / "test_batch").write_bytes(payload)
    with pytest.raises(D.CorruptDataError, match="refusing to load io.open"):
        D.load_dataset("cifar10", split="test", root=tmp_path, download=False)
    assert not marker.exists()
    pickle.loads(payload)[b"data"].close()  # the payload is real: a plain unpickler runs it
    assert marker.exists()


# ---------------------------------------------------------------------------------------------
# Missing files and downloads (no network: file:// URLs and a refused local port)


@pytest.mark.hostile(2)
def test_missing_files_error_names_folder_and_files(tmp_path: Path) -> None:
    with pytest.raises(D.DataNotFoundError) as err:
        D.load_dataset("mnist", root=tmp_path, download=False)   # the default split, offline
    msg = str(err.value)
    assert re.search("(?s)train-images.*Put the files in", msg)
    assert str(tmp_path / "MNIST" / "raw") in msg
    assert "train-images-idx3-ubyte" in msg and "train-labels-idx1-ubyte" in msg
    assert "download=True" in msg
    assert isinstance(err.value, FileNotFoundError)
    with pytest.raises(D.DataNotFoundError, match="cifar-10-batches-py"):
        D.load_dataset("cifar10", root=tmp_path, download=False)


@pytest.mark.hostile
def test_unreachable_download_is_data_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(D.MIRRORS, "mnist", ["http://127.0.0.1:9/", (tmp_path / "nowhere").as_uri() + "/"])
    monkeypatch.setitem(D.RESOURCES, "mnist", [("t10k-images-idx3-ubyte.gz", None),
                                               ("t10k-labels-idx1-ubyte.gz", None)])
    with pytest.raises(D.DataNotFoundError, match="Download failed") as err:
        D.load_dataset("mnist", split="test", root=tmp_path / "root", download=True)
    assert str(tmp_path / "root" / "MNIST" / "raw") in str(err.value)


def _serve_mnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, good_md5: bool = True) -> np.ndarray:
    """Put tiny MNIST test files behind a file:// mirror; returns the images."""
    src = tmp_path / "mirror"
    images, _ = write_mnist_split(src, "test", n=30)
    files = sorted(p.name for p in src.iterdir())
    monkeypatch.setitem(D.MIRRORS, "mnist", [src.as_uri() + "/"])
    monkeypatch.setitem(D.RESOURCES, "mnist",
                        [(f, md5(src / f) if good_md5 else "0" * 32) for f in files])
    return images


def test_download_via_file_url_reports_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images = _serve_mnist(tmp_path, monkeypatch)
    calls: list[tuple[int, int | None, str]] = []
    ds = D.load_dataset("mnist", split="test", root=tmp_path / "root", download=True,
                        progress=lambda done, total, msg: calls.append((done, total, msg)))
    np.testing.assert_array_equal(ds.x[:, 0].numpy(), images)
    raw = tmp_path / "root" / "MNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    finished = [c for c in calls if c[1] is not None and c[0] == c[1]]
    assert len(finished) == 2 and any("md5" in c[2] for c in calls)


@pytest.mark.hostile
def test_download_with_wrong_md5_fails_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _serve_mnist(tmp_path, monkeypatch, good_md5=False)
    with pytest.raises(D.DataNotFoundError, match="md5"):
        D.load_dataset("mnist", split="test", root=tmp_path / "root", download=True)
    assert not any((tmp_path / "root" / "MNIST" / "raw").iterdir())  # no partial files left


def test_cifar_download_extracts_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_cifar(tmp_path / "build" / "cifar-10-batches-py", n=2)
    archive = tmp_path / "mirror" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "build" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    monkeypatch.setitem(D.MIRRORS, "cifar10", [archive.parent.as_uri() + "/"])
    monkeypatch.setitem(D.RESOURCES, "cifar10", [(archive.name, md5(archive))])
    ds = D.load_dataset("cifar10", split="all", root=tmp_path / "root")  # download=None: nothing on disk
    assert len(ds) == 12 and ds.split == "all"


def test_env_var_sets_the_only_search_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENLIB_DATA_DIR", str(tmp_path))
    assert D.data_root() == tmp_path and D.search_roots() == [tmp_path]
    write_mnist_split(tmp_path / "MNIST" / "raw", "test", n=7)
    ds = D.load_dataset("mnist", split="test", download=False)
    assert len(ds) == 7 and ds.source == str(tmp_path / "MNIST" / "raw")
    assert D.search_roots(tmp_path / "explicit") == [tmp_path / "explicit"]  # explicit root wins


def test_default_search_roots_include_repo_and_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GENLIB_DATA_DIR", raising=False)
    repo = Path(D.__file__).resolve().parents[2]
    assert D.search_roots() == [Path.home() / ".cache/genlib/data", repo / "data",
                                repo.parent / "shared" / "data"]


# ---------------------------------------------------------------------------------------------
# Bundled digits and 2-D toys


def test_digits() -> None:
    full = D.load_dataset("digits", split="all")
    train, test = D.load_dataset("digits"), D.load_dataset("digits", split="test")
    assert len(full) == 1797 and len(train) + len(test) == 1797
    assert full.shape == (1, 8, 8) and full.num_classes == 10 and full.x.dtype == torch.uint8
    assert int(full.x.max()) == 255


@pytest.mark.parametrize("name, k", [("ring", 8), ("grid", 25), ("moons", None), ("spiral", None)])
def test_toys_shape_determinism_and_modes(name: str, k: int | None) -> None:
    a = D.load_dataset(name, n=500, seed=3)
    assert a.shape == (2,) and not a.is_image and a.x.dtype == torch.float32 and a.x.shape == (500, 2)
    assert torch.equal(a.x, D.load_dataset(name, n=500, seed=3).x)
    assert not torch.equal(a.x, D.load_dataset(name, n=500, seed=4).x)
    assert a.mode_std > 0
    if k is None:
        assert a.modes is None and a.num_classes == 2
    else:
        assert a.modes.shape == (k, 2) and a.num_classes == k
        nearest = torch.cdist(a.x, a.modes).argmin(1)
        assert (nearest == a.y).float().mean() > 0.99  # labels are the mixture components


def test_ring_points_lie_near_unit_circle() -> None:
    ds = D.load_dataset("ring", n=2000)
    radius = ds.x.norm(dim=1)
    assert (radius - 1).abs().max() < 0.3 and abs(radius.mean().item() - 1) < 0.01
    assert torch.allclose(ds.modes.norm(dim=1), torch.ones(8))


# ---------------------------------------------------------------------------------------------
# Batching


def _numbered_images(n: int = 12) -> D.Dataset:
    """Images whose pixels and labels both equal the example's index, to track each one."""
    x = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    return D.Dataset("test", "all", x, torch.arange(n), [str(i) for i in range(n)])


@pytest.mark.parametrize("device", DEVICES)
def test_batches_cover_each_example_once_per_epoch(device: str) -> None:
    ds = _numbered_images(12).to(device)
    assert ds.steps_per_epoch(4) == 3
    it = ds.batches(4)
    epochs = []
    for _ in range(5):
        batches = [next(it) for _ in range(3)]
        for x, y in batches:
            assert x.device == ds.device and y.device == ds.device
            assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
            assert torch.allclose(x[:, 0, 0, 0] * 255, y.float())  # images stay with their labels
        order = torch.cat([y for _, y in batches]).cpu()
        assert sorted(order.tolist()) == list(range(12))
        epochs.append(order.tolist())
    assert len({tuple(e) for e in epochs}) > 1


@pytest.mark.parametrize("device", DEVICES)
def test_seeded_batches_repeat(device: str) -> None:
    ds = _numbered_images(12).to(device)

    def first_labels(seed: int) -> list[int]:
        it = ds.batches(5, generator=torch.Generator().manual_seed(seed))
        return torch.cat([next(it)[1] for _ in range(6)]).tolist()

    assert first_labels(1) == first_labels(1) != first_labels(2)
    cpu = _numbered_images(12).batches(5, generator=torch.Generator().manual_seed(1))
    assert first_labels(1) == torch.cat([next(cpu)[1] for _ in range(6)]).tolist()   # the same on every device


def test_batch_size_larger_than_dataset_and_bad_arguments() -> None:
    ds = _numbered_images(5)
    assert ds.steps_per_epoch(64) == 1 and next(ds.batches(64))[0].shape[0] == 5
    with pytest.raises(ValueError):
        ds.batches(0)
    on_gpu = torch.Generator(device="cuda") if torch.cuda.is_available() else \
        types.SimpleNamespace(device=torch.device("cuda"))        # what the check reads of one, without a GPU
    with pytest.raises(ValueError, match="generator is on cuda.*: batch orders are drawn on the CPU"):
        ds.batches(2, generator=on_gpu)


def test_toy_get_returns_raw_floats_and_subset_is_reproducible() -> None:
    ds = D.load_dataset("ring", n=100)
    x, y = ds.get(torch.tensor([0, 5]))
    assert torch.equal(x, ds.x[[0, 5]]) and torch.equal(y, ds.y[[0, 5]])
    sub = ds.subset(10, seed=1)
    assert len(sub) == 10 and torch.equal(sub.x, ds.subset(10, seed=1).x)
    assert sub.modes is ds.modes


# ---------------------------------------------------------------------------------------------
# Image folders


def _make_folder(root: Path) -> Path:
    (root / "cat").mkdir(parents=True)
    (root / "dog").mkdir()
    Image.new("L", (10, 20), 200).save(root / "cat" / "a.png")
    Image.new("RGB", (30, 30), (255, 0, 0)).save(root / "cat" / "b.png")
    Image.new("RGBA", (16, 8), (0, 0, 255, 128)).save(root / "dog" / "c.png")
    Image.new("P", (5, 5), 3).save(root / "dog" / "d.png")
    (root / "cat" / "notes.txt").write_text("not an image")
    return root


@pytest.mark.parametrize("channels", [1, 3])
def test_folder_with_class_subfolders(tmp_path: Path, channels: int) -> None:
    ds = D.load_dataset("folder", path=_make_folder(tmp_path / "imgs"), size=16, channels=channels)
    assert ds.class_names == ["cat", "dog"] and ds.y.tolist() == [0, 0, 1, 1]
    assert ds.shape == (channels, 16, 16) and ds.x.dtype == torch.uint8
    assert ds.skipped == 1 and ds.split == "all"
    if channels == 3:
        assert ds.x[1, :, 8, 8].tolist() == [255, 0, 0]  # the red square stays red


def test_flat_folder_and_empty_folder(tmp_path: Path) -> None:
    for i in range(3):
        Image.new("L", (12, 12), 40 * i).save(tmp_path / f"{i}.png")
    ds = D.load_dataset("folder", path=tmp_path)
    assert ds.class_names == ["all"] and len(ds) == 3 and ds.shape == (1, 28, 28)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no readable images"):
        D.load_dataset("folder", path=tmp_path / "empty")


# ---------------------------------------------------------------------------------------------
# Uploaded zips: hostile and odd archives


def _png(mode="L", size=(12, 12), colour=128) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour).save(buf, format="PNG")
    return buf.getvalue()


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.hostile
def test_zip_path_traversal_is_not_extracted_and_is_counted():
    data = _zip({"cats/a.png": _png(), "dogs/b.png": _png(), "../../evil.png": _png(),
                 "/abs/evil.png": _png()})
    ds = D.load_dataset("folder", path=data)     # read in memory, nothing extracted (genlib/data/folder.py)
    assert ds.class_names == ["cats", "dogs"] and len(ds) == 2
    assert ds.skipped == 2


@pytest.mark.hostile
def test_zip_bomb_is_refused():
    bomb = _zip({"a/zeros.png": b"\0" * (20 << 20)})      # 20 MB of zeros, ~20 kB compressed
    assert len(bomb) < 100_000
    with pytest.raises(ValueError, match="zip bomb"):
        D.load_dataset("folder", path=bomb)


@pytest.mark.hostile
def test_zip_non_images_mixed_sizes_and_modes():
    data = _zip({
        "a/grey.png": _png("L", (10, 14)), "a/rgba.png": _png("RGBA", (40, 20), (1, 2, 3, 4)),
        "b/palette.png": _png("P", (28, 28), 3), "b/rgb.jpg": _jpeg(), "b/notes.txt": b"not an image",
        "b/fake.png": b"\x89PNG but not really",
    })
    ds = D.load_dataset("folder", path=data, size=16)
    assert ds.shape == (1, 16, 16) and len(ds) == 4 and ds.skipped == 2
    ds3 = D.load_dataset("folder", path=data, size=16, channels=3)
    assert ds3.shape == (3, 16, 16)


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (30, 30), (200, 10, 10)).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.mark.hostile
@pytest.mark.parametrize("what, make, match", [
    ("empty archive", lambda: _zip({}), "no readable images"),
    ("archive of text files only", lambda: _zip({"a/x.txt": b"x"}), "no readable images"),
    ("random bytes as a zip", lambda: b"PK\x03\x04 definitely broken", "not a valid zip"),
])
def test_empty_archive_and_not_a_zip(what, make, match):
    with pytest.raises(ValueError, match=match):
        D.load_dataset("folder", path=make())


@pytest.mark.hostile
def test_one_class_archive():
    one = D.load_dataset("folder", path=_zip({"cats/a.png": _png(), "cats/b.png": _png()}))
    assert len(one) == 2 and one.num_classes == 1
    # a one-class dataset trains an unconditional model, and refuses a conditional one clearly
    make_model("gan", one)
    with pytest.raises(ValueError, match="num_classes"):
        make_model("cgan", one)


@pytest.mark.hostile(3)
def test_unknown_name_and_split() -> None:
    with pytest.raises(ValueError, match="unknown dataset"):
        D.load_dataset("imagenet")
    with pytest.raises(ValueError, match="unknown 2-D toy 'imagenet'"):   # was silently a spiral
        load_toy("imagenet")
    with pytest.raises(ValueError, match="split"):
        D.load_dataset("ring", split="validation")
    assert set(D.DATASETS) >= {"mnist", "fashion-mnist", "cifar10", "digits", "ring", "grid",
                               "moons", "spiral", "folder"}
    assert set(D.LOADERS) == set(D.DATASETS)
    assert D.canonical_name("Fashion_MNIST") == D.canonical_name("fashion") == "fashion-mnist"


def test_register_adds_a_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(D, "DATASETS", dict(D.DATASETS))
    monkeypatch.setattr(D, "LOADERS", dict(D.LOADERS))
    seen = {}

    def load(split, root, download, progress, **options):
        seen.update(split=split, **options)
        return _numbered_images(3)

    D.register("numbers", "three numbered images", load)
    ds = D.load_dataset("numbers", split="test", k=1)
    assert len(ds) == 3 and seen == {"split": "test", "k": 1}
    assert D.DATASETS["numbers"] == "three numbered images"


# ---------------------------------------------------------------------------------------------
# Hostile and damaged data files (issue 16): every one is a CorruptDataError naming the file
# (both a DataNotFoundError, which the dashboard's sidebar shows, and a ValueError), refused
# before it allocates what it declares.

def _peak_mb(fn) -> tuple[BaseException | None, float]:
    """(what `fn()` raised, the peak of memory it asked for in MB, touched or not)."""
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        err = None
    except BaseException as e:  # noqa: BLE001 - returned for the caller to check
        err = e
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return err, peak


def _idx_bytes(arr: np.ndarray, type_byte: int = 0x08) -> bytes:
    return bytes([0, 0, type_byte, arr.ndim]) + np.asarray(arr.shape, ">u4").tobytes() + arr.tobytes()


def _mnist_files(root: Path, images: bytes, labels: bytes) -> Path:
    """MNIST test files under root with these (already gzipped or raw) contents."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "t10k-images-idx3-ubyte.gz").write_bytes(images)
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(labels)
    return raw


def _good_images() -> bytes:
    return gzip.compress(_idx_bytes(np.zeros((4, 28, 28), np.uint8)))


def _good_labels() -> bytes:
    return gzip.compress(_idx_bytes(np.arange(4, dtype=np.uint8)))


def _bad_crc(gz: bytes) -> bytes:
    return gz[:-8] + bytes([gz[-8] ^ 0xFF]) + gz[-7:]


def _gzip_bomb() -> bytes:
    """Declares 4 images of 28x28 (3 kB) but inflates to 64 MB (the .gz is ~64 kB)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = bytes([0, 0, 8, 3]) + struct.pack(">III", 4, 28, 28)
    return comp.compress(head) + b"".join(comp.compress(bytes(1 << 20)) for _ in range(64)) + comp.flush()


GZ_DAMAGE = {
    "bad CRC": lambda: _bad_crc(_good_images()),
    "truncated stream": lambda: _good_images()[: len(_good_images()) // 2],
    "garbage after the gzip header": lambda: _good_images()[:10] + bytes(range(256)) * 4,
    "garbage after the stream": lambda: _good_images() + b"not gzip at all",
    "not gzip": lambda: b"\x1f\x8b but no more",
    "gzip bomb (3 kB declared, 64 MB inside)": _gzip_bomb,
    "absurd dims (2^32-1 cubed)": lambda: gzip.compress(bytes([0, 0, 8, 3]) + b"\xff" * 12),
    "255 dimensions": lambda: gzip.compress(bytes([0, 0, 8, 255]) + bytes(1020)),
    "zero images": lambda: gzip.compress(_idx_bytes(np.zeros((0, 28, 28), np.uint8))),
    "64x64 images": lambda: gzip.compress(_idx_bytes(np.zeros((4, 64, 64), np.uint8))),
}


@pytest.mark.hostile
@pytest.mark.parametrize("what", GZ_DAMAGE)
def test_damaged_gz_is_one_clear_error_naming_the_file(tmp_path: Path, what: str) -> None:
    raw = _mnist_files(tmp_path, GZ_DAMAGE[what](), _good_labels())
    err, peak = _peak_mb(lambda: D.load_dataset("mnist", split="test", root=tmp_path, download=False))
    assert isinstance(err, D.CorruptDataError), repr(err)
    assert isinstance(err, D.DataNotFoundError) and isinstance(err, ValueError)  # the sidebar shows it
    assert str(raw / "t10k-images-idx3-ubyte.gz") in str(err)
    assert peak < 8, f"{what}: asked for {peak:.0f} MB before refusing"


@pytest.mark.hostile
def test_plain_idx_with_absurd_dims_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 0x0E, 3]) + struct.pack(">III", 60_000, 4096, 4096))
    with pytest.raises(D.CorruptDataError, match="ceiling") as err:
        D.read_idx(path)
    assert str(path) in str(err.value)


@pytest.mark.hostile(3)
@pytest.mark.parametrize("labels, type_byte, match", [
    (np.array([0, 1, 10, 3], np.uint8), 0x08, "label 10 is outside the 10 classes"),
    (np.array([0, -1, 2, 3], np.int8), 0x09, "label -1 is outside"),
    (np.array([0, 1, 2, 3], ">f4"), 0x0D, "labels must be integers"),
], ids=["too large", "negative", "floats"])
def test_idx_labels_outside_the_classes_are_refused(tmp_path: Path, labels, type_byte, match) -> None:
    raw = _mnist_files(tmp_path, _good_images(), gzip.compress(_idx_bytes(labels, type_byte)))
    with pytest.raises(D.CorruptDataError, match=match) as err:
        D.load_dataset("mnist", split="test", root=tmp_path, download=False)
    assert str(raw / "t10k-labels-idx1-ubyte.gz") in str(err.value)


def _cifar_test_batch(tmp_path: Path, payload: bytes) -> Path:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir(exist_ok=True)
    (folder / "test_batch").write_bytes(payload)
    return folder / "test_batch"


def _colliding_keys(n: int) -> bytes:
    """A protocol-2 dict of n int keys that all hash alike (k * (2**61 - 1) + 1)."""
    return pickle.dumps({k * (2**61 - 1) + 1: 0 for k in range(n)}, protocol=2)


_NP = b"cnumpy.core.multiarray\n"
CIFAR_HOSTILE = {
    # declared lengths the C unpickler allocates before reading
    "bytes8 declaring 6 GiB": (b"\x80\x04\x8e" + struct.pack("<Q", 6 << 30) + b"abc", "not a valid pickle"),
    "unicode8 declaring 6 GiB": (b"\x80\x04\x8d" + struct.pack("<Q", 6 << 30) + b"abc", "not a valid pickle"),
    "memo index 2**28": (b"\x80\x02}r" + struct.pack("<I", 1 << 28) + b".", "memo index"),
    # numpy callables asked for huge arrays
    "_reconstruct of 4 GiB": (b"\x80\x02" + _NP + b"_reconstruct\ncnumpy\nndarray\n\x8a\x05"
                              + (4 << 30).to_bytes(5, "little") + b"\x85C\x01b\x87R.", "over the 64 MiB"),
    "numpy.ndarray((2**32,))": (b"\x80\x02cnumpy\nndarray\n\x8a\x05" + (1 << 32).to_bytes(5, "little")
                                + b"\x85\x85R.", "numpy.ndarray"),
    "object array": (pickle.dumps(np.array([1, "a"], dtype=object), protocol=2), "dtype object"),
    "bytearray(2**33)": (b"\x80\x02c__builtin__\nbytearray\n\x8a\x05" + (1 << 33).to_bytes(5, "little")
                         + b"\x85R.", "bytearray"),
    "_codecs.encode(..., 'hex')": (b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x03\x00\x00\x00hex\x86R.",
                                   "encode"),
    "20,000 colliding dict keys": (_colliding_keys(20_000), "dict and set items"),
    # damaged or wrong content
    "truncated batch": (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]})[:-40],
                        "not a valid pickle"),
    "empty dict": (pickle.dumps({}), "b'data' should be"),
    "labels not ints": (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, "x"]}),
                        "flat list of integers"),
    "label 10": (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}),
                 "label 10 is outside"),
    "label -3": (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [-3, 1]}),
                 "label -3 is outside"),
    "label 2**70": (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [2**70, 1]}),
                    "label|integers"),
}


@pytest.mark.hostile
@pytest.mark.parametrize("what", CIFAR_HOSTILE)
def test_crafted_cifar_pickles_are_refused_before_allocating(tmp_path: Path, what: str) -> None:
    payload, match = CIFAR_HOSTILE[what]
    path = _cifar_test_batch(tmp_path, payload)
    err, peak = _peak_mb(lambda: D.load_dataset("cifar10", split="test", root=tmp_path, download=False))
    assert isinstance(err, D.CorruptDataError), repr(err)
    assert re.search(match, str(err)) and str(path) in str(err), str(err)
    assert peak < 16, f"{what}: asked for {peak:.0f} MB before refusing"


@pytest.mark.hostile(2)
def test_cifar_file_over_the_ceiling_and_bad_meta(tmp_path: Path) -> None:
    write_cifar(tmp_path / "cifar-10-batches-py", n=2)
    big = tmp_path / "cifar-10-batches-py" / "test_batch"
    os.truncate(big, cifar._CIFAR_MAX_FILE_BYTES + 1)       # sparse: costs no disk
    with pytest.raises(D.CorruptDataError, match="refused unread"):
        D.load_dataset("cifar10", split="test", root=tmp_path, download=False)
    meta = tmp_path / "cifar-10-batches-py" / "batches.meta"
    meta.write_bytes(pickle.dumps({b"label_names": [b"cat"] * 3}))
    with pytest.raises(D.CorruptDataError, match="10 short names") as err:
        D.load_dataset("cifar10", split="train", root=tmp_path, download=False)
    assert str(meta) in str(err.value)


def test_cifar_real_layout_still_passes_the_prescan(tmp_path: Path) -> None:
    """A full-size batch (10,000 rows, protocol 2 as the real files) loads within the bounds."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batch = {b"batch_label": b"testing batch 1 of 1", b"labels": [i % 10 for i in range(10_000)],
             b"data": np.zeros((10_000, 3072), np.uint8), b"filenames": [b"x_%d.png" % i for i in range(10_000)]}
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    ds = D.load_dataset("cifar10", split="test", root=tmp_path, download=False)
    assert len(ds) == 10_000 and ds.y.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


# ---------------------------------------------------------------------------------------------
# Corrupt data roots: a clear DataNotFoundError naming the folder, never a crash


@pytest.mark.hostile
@pytest.mark.parametrize("what", ["root is a file", "MNIST is a file", "raw is a broken link",
                                  "data file is a folder", "data file is a broken link"])
def test_corrupt_data_root_is_named(tmp_path: Path, what: str) -> None:
    root = tmp_path / "root"
    raw = root / "MNIST" / "raw"
    if what == "root is a file":
        root.write_text("x")
    elif what == "MNIST is a file":
        root.mkdir()
        (root / "MNIST").write_text("x")
    elif what == "raw is a broken link":
        (root / "MNIST").mkdir(parents=True)
        raw.symlink_to(tmp_path / "nowhere")
    else:
        raw.mkdir(parents=True)
        (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(_good_labels())
        if what == "data file is a folder":
            (raw / "t10k-images-idx3-ubyte.gz").mkdir()
        else:
            (raw / "t10k-images-idx3-ubyte.gz").symlink_to(tmp_path / "gone.gz")
    with pytest.raises(D.DataNotFoundError) as err:
        D.load_dataset("mnist", split="test", root=root, download=False)
    msg = str(err.value)
    assert "t10k-images-idx3-ubyte" in msg and str(raw) in msg
    expect = {"root is a file": f"{root} is a file", "MNIST is a file": f"{root / 'MNIST'} is a file",
              "raw is a broken link": f"{raw} is a broken symbolic link"}.get(what, "")
    assert expect in msg


@pytest.mark.hostile(2)
def test_unreadable_data_folder_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _mnist_files(tmp_path, _good_images(), _good_labels())
    real_is_file, real_access = Path.is_file, os.access

    def is_file(self: Path) -> bool:           # as for a folder without search permission
        if raw in self.parents:
            raise PermissionError(13, "Permission denied", str(self))
        return real_is_file(self)

    monkeypatch.setattr(Path, "is_file", is_file)
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != raw and real_access(p, mode))
    with pytest.raises(D.DataNotFoundError, match=f"{re.escape(str(raw))} cannot be read"):
        D.load_dataset("mnist", split="test", root=tmp_path, download=False)
    monkeypatch.undo()
    real_open = gzip.open
    monkeypatch.setattr(gzip, "open", lambda p, *a, **k: (_ for _ in ()).throw(
        PermissionError(13, "Permission denied", str(p))) if "labels" in str(p) else real_open(p, *a, **k))
    with pytest.raises(D.CorruptDataError, match="labels-idx1-ubyte.gz is not a valid gzip file: .*Permission"):
        D.load_dataset("mnist", split="test", root=tmp_path, download=False)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder")
@pytest.mark.hostile
def test_really_unreadable_folder(tmp_path: Path) -> None:
    raw = _mnist_files(tmp_path, _good_images(), _good_labels())
    raw.chmod(0)
    try:
        with pytest.raises(D.DataNotFoundError, match="cannot be read"):
            D.load_dataset("mnist", split="test", root=tmp_path, download=False)
    finally:
        raw.chmod(0o755)


def test_unknown_user_in_data_dir_is_taken_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENLIB_DATA_DIR", "~no_such_user_16/data")
    assert D.data_root() == Path("~no_such_user_16/data")


# ---------------------------------------------------------------------------------------------
# Hostile and damaged zip uploads: one DataError (a ValueError, which the sidebar shows)


def _noise_png(side: int) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _patch_member(data: bytes, **fields: int) -> bytes:
    """Rewrite fields of the first member in both its local and central headers."""
    b = bytearray(data)
    loc, cen = b.find(b"PK\x03\x04"), b.find(b"PK\x01\x02")
    offsets = {"flags": (6, 8, "<H"), "method": (8, 10, "<H"), "file_size": (22, 24, "<I")}
    for name, value in fields.items():
        lo, co, fmt = offsets[name]
        struct.pack_into(fmt, b, loc + lo, value)
        struct.pack_into(fmt, b, cen + co, value)
    return bytes(b)


def _flip_data_byte(data: bytes) -> bytes:
    b = bytearray(data)
    loc = b.find(b"PK\x03\x04")
    nlen, xlen = struct.unpack_from("<HH", b, loc + 26)
    b[loc + 30 + nlen + xlen + 40] ^= 0xFF
    return bytes(b)


def _lying_size() -> bytes:
    """Declares 1,000 bytes; the deflate stream holds 16 MB of zeros."""
    return _patch_member(_zip({"a/x.png": bytes(16 << 20)}), file_size=1000)


def _bzip2() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_BZIP2) as zf:
        zf.writestr("a/x.png", _png())
    return buf.getvalue()


ZIP_DAMAGE = {
    "member with a bad CRC": (lambda: _flip_data_byte(_zip({"a/x.png": _noise_png(40)}, zipfile.ZIP_STORED)),
                              "damaged.*CRC"),
    "corrupt deflate data": (lambda: _flip_data_byte(_zip({"a/x.png": bytes(range(256)) * 64})), "damaged"),
    "truncated archive": (lambda: _zip({"a/x.png": _png(), "b/y.png": _png()})[:-30], "not a valid zip"),
    "cut in the middle": (lambda: (lambda z: z[: len(z) // 2])(_zip({"a/x.png": _png(), "b/y.png": _png()})),
                          "not a valid zip"),
    "garbage central directory": (lambda: (lambda z: z[:z.find(b"PK\x01\x02")] + bytes(46)
                                            + z[z.find(b"PK\x05\x06"):])(_zip({"a/x.png": _png()})),
                                  "not a valid zip"),
    "encrypted member": (lambda: _patch_member(_zip({"a/x.png": _png()}), flags=0x1), "encrypted"),
    "bzip2 member": (_bzip2, "compression method 12"),
    "unknown method 99 (AES)": (lambda: _patch_member(_zip({"a/x.png": _png()}), method=99),
                                "compression method 99"),
    "member lying about its size": (_lying_size, "damaged"),
}


@pytest.mark.hostile
@pytest.mark.parametrize("what", ZIP_DAMAGE)
def test_damaged_zip_is_one_clear_error(what: str) -> None:
    make, match = ZIP_DAMAGE[what]
    data = make()
    err, peak = _peak_mb(lambda: D.load_dataset("folder", path=data, source="mine.zip"))
    assert isinstance(err, D.DataError) and isinstance(err, ValueError), repr(err)
    assert re.search(match, str(err)) and "mine.zip" in str(err), str(err)
    assert peak < 8, f"{what}: asked for {peak:.0f} MB"


@pytest.mark.hostile(5)
def test_zip_counts_and_sizes_are_bounded_before_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    # entries: counted from the central directory's bytes before zipfile parses them
    many = _zip({f"a/{i}.png": b"" for i in range(12)}, zipfile.ZIP_STORED)
    monkeypatch.setattr(F, "_ZIP_MAX_ENTRIES", 10)
    monkeypatch.setattr(zipfile, "ZipFile", lambda *a, **k: pytest.fail("parsed before counting"))
    with pytest.raises(D.DataError, match="12 entries is over the 10 limit"):
        D.load_dataset("folder", path=many)
    b = bytearray(many)                   # the end record lies: says 1 entry
    struct.pack_into("<HH", b, b.rfind(b"PK\x05\x06") + 8, 1, 1)
    with pytest.raises(D.DataError, match="12 entries"):
        D.load_dataset("folder", path=bytes(b))
    monkeypatch.undo()
    # files, classes, one member's size
    monkeypatch.setattr(F, "_ZIP_MAX_IMAGES", 5)
    with pytest.raises(D.DataError, match="6 files is over the 5 limit"):
        D.load_dataset("folder", path=_zip({f"a/{i}.png": _png() for i in range(6)}))
    monkeypatch.setattr(F, "_MAX_CLASSES", 3)
    with pytest.raises(D.DataError, match="4 class folders"):
        D.load_dataset("folder", path=_zip({f"{c}/x.png": _png() for c in "abcd"}))
    monkeypatch.setattr(F, "_ZIP_MAX_MEMBER", 1000)
    with pytest.raises(D.DataError, match="over the 0 MB limit for one file"):
        D.load_dataset("folder", path=_zip({"a/x.png": _noise_png(40)}))


@pytest.mark.hostile
def test_many_large_images_stop_at_the_pixel_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ~20 s archive scaled down: 50 solid 300x300 PNGs against a budget of 4 of them."""
    from PIL import ImageOps

    monkeypatch.setattr(F, "_ZIP_MAX_TOTAL_PIXELS", 4 * 300 * 300)
    decoded = []
    real_fit = ImageOps.fit
    monkeypatch.setattr(ImageOps, "fit", lambda img, *a, **k: decoded.append(img.size) or real_fit(img, *a, **k))
    png = _png(size=(300, 300))
    with pytest.raises(D.DataError, match=r"million pixels in all \(after 4 images\)"):
        D.load_dataset("folder", path=_zip({f"a/{i}.png": png for i in range(50)}))
    assert len(decoded) == 4     # the fifth was refused from its header, before decoding


@pytest.mark.hostile(3)
def test_images_pillow_must_not_decode_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"   # Pillow would start Ghostscript
    truncated = _noise_png(64)[:-60]
    data = _zip({"a/ok.png": _png(), "a/x.eps": eps, "a/cut.png": truncated, "a/huge.png": _png(size=(300, 300))})
    monkeypatch.setattr(F, "_MAX_PIXELS", 200 * 200)       # huge.png is over it: skipped undecoded
    ds = D.load_dataset("folder", path=data)
    assert len(ds) == 1 and ds.skipped == 3


@pytest.mark.hostile
def test_unreadable_local_folder_is_a_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "imgs").mkdir()
    monkeypatch.setattr(Path, "iterdir", lambda self: (_ for _ in ()).throw(
        PermissionError(13, "Permission denied", str(self))))
    with pytest.raises(D.DataError, match="cannot read .*imgs: Permission denied"):
        D.load_dataset("folder", path=tmp_path / "imgs")


@pytest.mark.parametrize("fmt", F._FORMATS)
def test_every_offered_format_still_loads(fmt: str) -> None:
    """Honest images in each format Pillow is offered, big enough to need many reads, load."""
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
    buf = io.BytesIO()
    (img.convert("P") if fmt == "GIF" else img).save(buf, format=fmt)
    ds = D.load_dataset("folder", path=_zip({f"a/x.{fmt.lower()}": buf.getvalue()}), channels=3)
    assert len(ds) == 1 and ds.skipped == 0


@pytest.mark.hostile(2)
def test_chunk_spam_and_small_member_bombs_stay_cheap(monkeypatch: pytest.MonkeyPatch) -> None:
    """PNGs of 100,000 empty chunks each (1.2 MB; Pillow parses chunks in Python, 0.2 s per MB)
    are cut off as unreadable; many small members that expand 1000x in all are refused."""
    def chunk(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + b"zzZz" + data + struct.pack(">I", zlib.crc32(b"zzZz" + data))

    head = _png()
    spam = head[:33] + b"".join(chunk(struct.pack(">I", i)) for i in range(100_000)) + head[33:]
    start = time.process_time()
    members = {"a/ok.png": _png(), "a/spam1.png": spam, "a/spam2.png": spam}
    ds = D.load_dataset("folder", path=_zip(members, zipfile.ZIP_STORED))
    assert len(ds) == 1 and ds.skipped == 2 and time.process_time() - start < 1   # were 8x8 images, 0.5 s
    zeros = {f"a/{i}.png": bytes(1 << 20) for i in range(20)}         # 20 x 1 MiB, under the per-member check
    with pytest.raises(D.DataError, match="in all .zip bomb"):
        D.load_dataset("folder", path=_zip(zeros))


@pytest.mark.hostile
def test_cpu_budget_stops_a_slow_archive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(F, "_ZIP_MAX_CPU_S", 0.0)
    with pytest.raises(D.DataError, match="took over 0 s of CPU"):
        D.load_dataset("folder", path=_zip({f"a/{i}.png": _png() for i in range(3)}))
