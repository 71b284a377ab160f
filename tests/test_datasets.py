"""Real-data loaders and preprocessing (kcollapse.datasets).

MNIST loaders are tested on tiny IDX/NPZ files written here byte by byte (the IDX header packed by
hand with ``struct``, independently of the reader).
"""

import gzip
import struct

import numpy as np
import pytest
from sklearn.datasets import load_digits

from kcollapse import datasets


def _write_idx(path, array, code):
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
    dtype = {0x08: ">u1", 0x0D: ">f4", 0x0C: ">i4"}[code]
    data = header + np.ascontiguousarray(array, dtype=dtype).tobytes()
    if str(path).endswith(".gz"):
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def _tiny_mnist(folder, *, gz=True, n_train=12, n_test=5, seed=0):
    rng = np.random.default_rng(seed)
    ext = ".gz" if gz else ""
    imgs = rng.integers(0, 256, (n_train, 4, 3), dtype=np.uint8)
    labs = rng.integers(0, 10, n_train).astype(np.uint8)
    _write_idx(folder / f"train-images-idx3-ubyte{ext}", imgs, 0x08)
    _write_idx(folder / f"train-labels-idx1-ubyte{ext}", labs, 0x08)
    timgs = rng.integers(0, 256, (n_test, 4, 3), dtype=np.uint8)
    tlabs = rng.integers(0, 10, n_test).astype(np.uint8)
    _write_idx(folder / f"t10k-images-idx3-ubyte{ext}", timgs, 0x08)
    _write_idx(folder / f"t10k-labels-idx1-ubyte{ext}", tlabs, 0x08)
    return imgs, labs, timgs, tlabs


def test_digits_is_the_real_scikit_learn_data_with_the_parity_target():
    ds = datasets.digits()
    ref = load_digits()
    assert ds.inputs.shape == (1797, 64) and ds.n_features == 64
    np.testing.assert_array_equal(ds.inputs, ref.data)
    np.testing.assert_array_equal(ds.targets, ref.target % 2)
    np.testing.assert_array_equal(ds.labels, ref.target)
    np.testing.assert_array_equal(datasets.digits(target="label").targets, ref.target.astype(float))


def test_prepare_uses_pool_statistics_only():
    ds = datasets.digits()
    pool, test = datasets.split(ds, 0.25, seed=3)
    assert pool.n_samples + test.n_samples == 1797 and test.n_samples == round(0.25 * 1797)
    p2, t2 = datasets.prepare(pool, test)
    keep = pool.inputs.std(0) > 0
    assert p2.n_features == keep.sum()
    np.testing.assert_allclose(p2.inputs.mean(0), 0, atol=1e-12)
    assert np.mean(np.sum(p2.inputs**2, 1)) / p2.n_features == pytest.approx(1.0, rel=1e-12)  # E|x|^2/p = 1
    mu, sd = pool.inputs[:, keep].mean(0), pool.inputs[:, keep].std(0)
    g = np.sqrt(np.mean(sd**2))
    np.testing.assert_allclose(t2.inputs, (test.inputs[:, keep] - mu) / g, rtol=1e-12)
    p4, t4 = datasets.prepare(pool, test, per_feature=True)
    np.testing.assert_allclose(p4.inputs.std(0), 1, atol=1e-12)
    np.testing.assert_allclose(t4.inputs, (test.inputs[:, keep] - mu) / sd, rtol=1e-12)
    # why the global scale is the default: z-scoring rarely-inked pixels makes outlier images
    assert np.max(np.sum(p4.inputs**2, 1)) / p4.n_features > 10 > np.max(np.sum(p2.inputs**2, 1)) / p2.n_features
    shift = pool.targets.mean()
    np.testing.assert_allclose(p2.targets, pool.targets - shift)
    np.testing.assert_allclose(t2.targets, test.targets - shift)
    assert p2.info["features_dropped_constant"] == int((~keep).sum()) >= 3  # digits has blank border pixels
    p3, _ = datasets.prepare(pool, unit_target=True)
    assert p3.targets.std() == pytest.approx(1.0) and abs(p3.targets.mean()) < 1e-12


def test_split_is_deterministic_and_disjoint():
    ds = datasets.digits()
    a1, b1 = datasets.split(ds, 0.1, seed=5)
    a2, b2 = datasets.split(ds, 0.1, seed=5)
    np.testing.assert_array_equal(a1.inputs, a2.inputs)
    rows = {r.tobytes() for r in ds.inputs}
    assert len(rows) > 1700  # nearly all digits are distinct images
    with pytest.raises(ValueError, match="test_fraction"):
        datasets.split(ds, 0.0)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_folder(tmp_path, gz):
    imgs, labs, timgs, tlabs = _tiny_mnist(tmp_path, gz=gz)
    train, test = datasets.load_mnist(str(tmp_path))
    np.testing.assert_array_equal(train.inputs, imgs.reshape(12, 12).astype(float))
    np.testing.assert_array_equal(train.targets, labs % 2)
    np.testing.assert_array_equal(test.inputs, timgs.reshape(5, 12))
    np.testing.assert_array_equal(test.labels, tlabs)
    # one images file: its labels file is found next to it
    single, none = datasets.load_mnist(str(tmp_path / f"train-images-idx3-ubyte{'.gz' if gz else ''}"))
    assert none is None and single.n_samples == 12


def test_read_idx_types_and_errors(tmp_path):
    arr = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    _write_idx(tmp_path / "f.idx", arr, 0x0D)
    np.testing.assert_array_equal(datasets.read_idx(str(tmp_path / "f.idx")), arr)
    (tmp_path / "bad.idx").write_bytes(b"\x01\x02\x08\x01")
    with pytest.raises(ValueError, match="magic"):
        datasets.read_idx(str(tmp_path / "bad.idx"))
    _write_idx(tmp_path / "short.idx", np.zeros(4, np.uint8), 0x08)
    (tmp_path / "short.idx").write_bytes((tmp_path / "short.idx").read_bytes()[:-1])
    with pytest.raises(ValueError, match="data bytes"):
        datasets.read_idx(str(tmp_path / "short.idx"))
    only_images = tmp_path / "x"
    only_images.mkdir()
    _write_idx(only_images / "train-images-idx3-ubyte", np.zeros((2, 2, 2), np.uint8), 0x08)
    with pytest.raises(ValueError, match="no labels"):
        datasets.load_mnist(str(only_images))
    with pytest.raises(FileNotFoundError):
        datasets.load_mnist(str(tmp_path / "missing"))


def test_mnist_npz(tmp_path):
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 256, (7, 2, 2)), rng.integers(0, 10, 7)
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=y, x_test=x[:3], y_test=y[:3])
    train, test = datasets.load_mnist(str(tmp_path / "mnist.npz"))
    np.testing.assert_array_equal(train.inputs, x.reshape(7, 4))
    np.testing.assert_array_equal(test.targets, y[:3] % 2)
    np.savez(tmp_path / "bad.npz", a=x)
    with pytest.raises(ValueError, match="x_train"):
        datasets.load_mnist(str(tmp_path / "bad.npz"))


def test_generic_npz_and_csv(tmp_path):
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((9, 3)), rng.standard_normal(9)
    np.savez(tmp_path / "d.npz", inputs=X, targets=y)
    ds = datasets.load_arrays(str(tmp_path / "d.npz"))
    np.testing.assert_array_equal(ds.inputs, X)
    np.testing.assert_array_equal(ds.targets, y)
    np.savetxt(tmp_path / "d.csv", np.c_[X, y], delimiter=",", header="a,b,c,y", comments="")
    ds2 = datasets.load_arrays(str(tmp_path / "d.csv"))
    np.testing.assert_allclose(ds2.inputs, X)
    np.savetxt(tmp_path / "n.csv", np.c_[X, np.arange(9)], delimiter=",")  # no header; integer labels
    ds3 = datasets.load_arrays(str(tmp_path / "n.csv"), target="parity")
    np.testing.assert_array_equal(ds3.targets, np.arange(9) % 2)
    d, t = datasets.load_dataset(f"csv:{tmp_path / 'n.csv'}")
    assert t is None and d.n_samples == 9
    np.savez(tmp_path / "nokeys.npz", foo=X)
    with pytest.raises(ValueError, match="need inputs"):
        datasets.load_arrays(str(tmp_path / "nokeys.npz"))
    (tmp_path / "text.csv").write_text("a,b\nx,y\n")
    with pytest.raises(ValueError, match="numbers"):
        datasets.load_arrays(str(tmp_path / "text.csv"))
    with pytest.raises(ValueError, match="unknown data spec"):
        datasets.load_dataset("imagenet")
    with pytest.raises(ValueError, match="NaN"):
        datasets.Dataset(np.array([[np.nan]]), np.zeros(1))
    with pytest.raises(ValueError, match="integer"):
        datasets.parity_target([0.5, 1.0])
