"""CLI sub-commands ``kernel-simulate`` and ``spectrum``, run in-process."""

import json
import struct

import numpy as np
import pytest

from kcollapse import cli


def _tiny_mnist(folder, n_train, n_test, seed=0):
    """Four uncompressed IDX files (header packed by hand) with 4x3 images."""
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        imgs = rng.integers(0, 256, (n, 4, 3), dtype=np.uint8)
        labs = rng.integers(0, 10, n).astype(np.uint8)
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">BBBBiii", 0, 0, 8, 3, n, 4, 3) + imgs.tobytes())
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">BBBBi", 0, 0, 8, 1, n) + labs.tobytes())

SMALL = ["--pool-size", "150", "--T", "20", "--T0", "10", "--generations", "0", "1", "--seeds", "3", "--quiet"]


def _run(capsys, argv):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_kernel_simulate_digits_json_and_outputs(capsys, tmp_path):
    out_json, csv, png = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "r.png"
    code, out, err = _run(capsys, ["kernel-simulate", *SMALL, "--json", "--out", str(out_json), "--csv", str(csv),
                                   "--plot", str(png)])
    assert code == 0, err
    payload = json.loads(out)
    assert payload == json.loads(out_json.read_text())
    cfg = payload["config"]
    assert cfg["pool_size"] == 150 and cfg["test_protocol"].startswith("population")
    assert cfg["kernel"]["kernel"] == "rbf" and cfg["kernel"]["gamma"] == pytest.approx(1 / cfg["features"])
    assert "scikit-learn alpha = ridge*T" in cfg["conventions"]["ridge"]
    fit = cfg["spectrum_fit"]
    rows = payload["results"]
    assert len(rows) == 1 * 2 * 2  # T values x generations x ridge rules (crit, bcrit)
    crit = [r for r in rows if r["rule"] == "ell_crit"][0]
    assert crit["ridge"] == pytest.approx(20 ** -fit["ell_crit"])
    bcrit = [r for r in rows if r["rule"] == "b*ell_crit"][0]
    assert bcrit["ridge"] == pytest.approx(10 ** -fit["ell_crit"])  # T^{-b ell} = T0^{-ell}
    for r in rows:
        assert r["simulation"] >= 0 and r["sem"] > 0 and r["theory"] > 0
        assert r["z"] == pytest.approx((r["simulation"] - r["theory"]) / r["sem"])
    assert "max_abs_z" in payload["summary"] and payload["summary"]["wall_time_s"] > 0
    assert csv.read_text().splitlines()[0].startswith("T,n,rule")
    assert png.stat().st_size > 5000
    npz = np.load(tmp_path / "r.npz")
    assert npz["T20_test_error_per_seed"].shape == (3, 2, 2)


def test_kernel_simulate_mnist_idx_held_out(capsys, tmp_path):
    _tiny_mnist(tmp_path, n_train=30, n_test=8)
    code, out, err = _run(capsys, ["kernel-simulate", "--data", f"mnist:{tmp_path}", "--kernel", "ntk", "--T", "12",
                                   "--T0", "6", "--generations", "0", "2", "--seeds", "2", "--ell", "0.5",
                                   "--no-theory", "--json", "--quiet"])
    assert code == 0, err
    payload = json.loads(out)
    assert payload["config"]["test_protocol"].startswith("held-out") and payload["config"]["test_size"] == 8
    assert [r["n"] for r in payload["results"]] == [0, 2] and payload["results"][0]["theory"] is None
    assert payload["results"][0]["ridge"] == pytest.approx(12 ** -0.5)


def test_spectrum_command_and_exports(capsys, tmp_path):
    code, out, err = _run(capsys, ["spectrum", "--pool-size", "300", "--json"])
    assert code == 0, err
    payload = json.loads(out)
    s = payload["summary"]
    assert len(payload["spectrum"]["eigenvalues"]) == 300 and s["trace"] == pytest.approx(1.0)
    assert s["beta"] > 0.5 and s["fit_range"] == [2, 30]
    assert s["ell_crit"] == pytest.approx(s["beta"] / (1 + 2 * s["beta"] * min(s["r"], 1)))
    lam = np.asarray(payload["spectrum"]["eigenvalues"])
    assert np.all(np.diff(lam) <= 1e-15)
    # the .npz export feeds the primal CLI's --spectrum file
    code, _, err = _run(capsys, ["spectrum", "--pool-size", "300", "--kernel", "poly", "--out", str(tmp_path / "s.npz")])
    assert code == 0, err
    z = np.load(tmp_path / "s.npz")
    assert z["eigenvalues"].shape == (300,) and float(z["eigenvalues"].sum()) == pytest.approx(1.0)  # normalised
    code, out, err = _run(capsys, ["theory", "--spectrum", "file", "--spectrum-file", str(tmp_path / "s.npz"),
                                   "--d", "300", "--T", "50", "--T0", "400", "--ridge", "0.01", "--generations", "0",
                                   "1", "--json"])
    assert code == 0, err
    # csv export and a generic npz data file
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    np.savez(tmp_path / "d.npz", X=X, y=np.tanh(X[:, 0]))
    code, out, err = _run(capsys, ["spectrum", "--data", f"npz:{tmp_path / 'd.npz'}", "--kernel", "laplace",
                                   "--fit-range", "2", "20", "--out", str(tmp_path / "s.csv")])
    assert code == 0, err
    assert "capacity beta" in out
    assert (tmp_path / "s.csv").read_text().splitlines()[0] == "i,eigenvalue,coefficient,energy"


@pytest.mark.parametrize("argv,flag", [
    (["kernel-simulate", "--data", "imagenet"], "--data"),
    (["kernel-simulate", "--data", "mnist:/no/such/path"], "--data"),
    (["kernel-simulate", "--T", "1"], "--ell bcrit"),
    (["kernel-simulate", "--T", "0", "--ridge", "0.1"], "--T"),
    (["kernel-simulate", "--ell", "fast", "--pool-size", "50", "--T", "5"], "--ell"),
    (["kernel-simulate", "--mode", "mix"], "--synthetic-fraction"),
    (["kernel-simulate", "--test-fraction", "2"], "--test-fraction"),
    (["kernel-simulate", "--gamma", "-1", "--pool-size", "50", "--T", "5"], "--gamma"),
    (["kernel-simulate", "--sigma", "-1"], "--sigma"),
    (["kernel-simulate", "--sampling", "without-replacement", "--pool-size", "50", "--T", "80"], "without-replacement"),
    (["spectrum", "--pool-size", "50", "--fit-range", "40", "41"], "--fit-range"),
    (["spectrum", "--pool-size", "50", "--out", "x.txt"], "--out"),
])
def test_bad_input_exits_2_with_one_line(capsys, argv, flag):
    code, out, err = _run(capsys, argv)
    assert code == 2
    assert flag in err and err.count("\n") == 1 and "Traceback" not in err


def test_interrupt_keeps_completed_seeds(capsys, monkeypatch):
    import kcollapse.simulate as sim

    real = sim.simulate_kernel_chain
    calls = {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(sim, "simulate_kernel_chain", flaky)
    # same shapes as the first test's run (two ridge values, one seed per batch): no new compile
    code, out, err = _run(capsys, ["kernel-simulate", *SMALL[:-3], "--seeds", "3", "--batch-size", "1", "--quiet",
                                   "--json", "--no-theory", "--ridge", "0.01", "0.02"])
    assert code == 130
    payload = json.loads(out)
    assert payload["config"]["interrupted"] and all(r["seeds"] == 1 for r in payload["results"])
