"""CLI for --model mixture / random-projection: JSON layout, agreement, files, bad input (exit 2, one line)."""

import json

import numpy as np
import pytest

import kcollapse as kc
import kcollapse.strong as strong
from _cli_helpers import run

# small problems; finite-size allowance 6 % at d = 20 (deterministic equivalents are O(1/d); at d = 30..60
# we measured <= 4.4 %, see tests/test_strong.py; the O(1/d) gap at d = 20 is up to ~1.5x that)
ALLOWANCE = 0.06




def assert_agreement(rows):
    for r in rows:
        assert abs(r["simulation"] - r["theory"]) <= 4 * r["sem"] + ALLOWANCE * abs(r["theory"]), r


def test_compare_mixture_json(capsys, tmp_path):
    out = tmp_path / "mix.json"
    code, stdout, err = run(capsys, "compare", "--model", "mixture", "--d", "20", "--T", "60", "--p2", "0", "0.25", "0.5",
                            "--ridge", "0", "0.1", "--c2", "0.5", "--sigma", "0.3", "--strong-sigma2", "0.5",
                            "--spectrum", "power-law", "--beta", "1.5", "--r", "0.5", "--seeds", "96", "--quiet",
                            "--finite-size", "--json", "--out", str(out))
    assert code == 0, err
    payload = json.loads(stdout)  # stdout is exactly one JSON object
    assert set(payload) == {"config", "environment", "results", "summary"}
    cfg, rows, summary = payload["config"], payload["results"], payload["summary"]
    assert cfg["model"] == "mixture" and cfg["mixing"] == "pooled" and cfg["n"] == 60 and cfg["d"] == 20
    assert cfg["n_synthetic"] == [0, 15, 30] and cfg["seeds"] == 96 and cfg["c2"] == 0.5
    assert {"ridge", "ridge_strong", "quality", "test_error_strong"} <= set(cfg["conventions"])
    assert [(r["p2"], r["ridge"]) for r in rows] == [(p, lam) for p in (0, 0.25, 0.5) for lam in (0.0, 0.1)]
    for r in rows:
        assert {"theory", "simulation", "sem", "z", "relative_gap", "seeds", "theorem", "n_synthetic"} <= set(r)
        assert r["z"] == pytest.approx((r["simulation"] - r["theory"]) / r["sem"])
    assert summary["points"] == 6
    assert summary["max_abs_z"] == pytest.approx(max(abs(r["z"]) for r in rows))
    assert summary["max_abs_relative_gap"] == pytest.approx(max(abs(r["relative_gap"]) for r in rows))
    assert_agreement(rows)
    # theory at ridge 0 is Corollary 1 with the exact OLS variance (independent closed form)
    for r in rows:
        if r["ridge"] == 0:
            p2 = r["n_synthetic"] / 60
            phi = 20 / 60
            pooled = (1 - p2) * 0.09 + p2 * 0.25
            expected = pooled * 20 / (60 - 21) + (p2**2 + p2 * (1 - p2) * phi / (1 - phi)) * 0.5
            assert r["theory"] == pytest.approx(expected, rel=1e-10)
    with np.load(tmp_path / "mix.npz") as z:
        assert z["test_error_per_seed"].shape == (96, 3, 2)
        np.testing.assert_allclose(z["test_error_per_seed"].mean(0).ravel(), [r["simulation"] for r in rows])


RP_ARGS = ["--model", "random-projection", "--d", "30", "--T", "20", "--width", "10", "20", "60", "--p2", "0.4", "--ridge",
           "0.01", "--c2", "1", "--sigma", "0.2", "--spectrum", "power-law", "--beta", "1", "--r", "0.5"]


def test_compare_random_projection(capsys):
    code, stdout, err = run(capsys, "compare", *RP_ARGS, "--seeds", "96", "--quiet", "--json")
    assert code == 0, err
    payload = json.loads(stdout)
    rows = payload["results"]
    assert payload["config"]["model"] == "random-projection" and payload["summary"]["points"] == 3
    assert [r["width"] for r in rows] == [10, 20, 60] and rows[1]["psi"] == 1.0
    assert_agreement(rows)
    spec = kc.spectra.power_law(30, 1.0, 0.5)
    th = strong.random_projection_error(spec, strong.mismatch_covariance(spec, 1.0), 20, 20, 8 / 20, 0.01, 0.2)
    assert rows[1]["theory"] == pytest.approx(float(th.total), rel=1e-12)
    code, stdout, err = run(capsys, "theory", *RP_ARGS)  # the readable table (same compiled theory grid)
    assert code == 0, err
    assert "Thm 2 (corrected" in stdout and "psi=m/n" in stdout and "collapse" in stdout


def test_theory_weighted_reports_optimal_weight(capsys):
    code, stdout, err = run(capsys, "theory", "--model", "mixture", "--mixing", "weighted", "--d", "20", "--T", "100",
                            "--p2", "0.4", "--alpha", "0", "0.2", "0.4", "1", "--c2", "1", "--sigma", "1",
                            "--strong-sigma2", "0.3", "--json")
    assert code == 0, err
    payload = json.loads(stdout)
    rows = payload["results"]
    assert [r["alpha"] for r in rows] == [0.0, 0.2, 0.4, 1.0]
    for r in rows:
        ours = strong.weighted_mixture_error(20, 60, 40, r["alpha"], 1.0, 1.0, 0.3)
        assert r["test_error"] == pytest.approx(float(ours.total), rel=1e-12)
        assert r["small_phi"] == pytest.approx(float(strong.weighted_mixture_error_small_phi(20, 60, 40, r["alpha"], 1.0, 1.0,
                                                                                              0.3).total), rel=1e-12)
    # alpha = p2 is pooling: Corollary 1 (pooled noise 0.6 + 0.4 * 0.09, phi = 0.2)
    assert rows[2]["test_error"] == pytest.approx((0.6 + 0.4 * 0.09) * 0.25 + (0.16 + 0.24 * 0.25), rel=1e-12)
    star = payload["summary"]["optimal_alpha"][0]
    assert star["alpha_star"] == pytest.approx(float(strong.optimal_mixing_weight(20, 60, 40, 1.0, 1.0, 0.3)), rel=1e-6)
    assert 0 < star["alpha_star_small_phi"] < 1


def test_simulate_writes_csv_and_iterative_theory(capsys, tmp_path):
    csv = tmp_path / "mix.csv"
    code, stdout, err = run(capsys, "simulate", "--model", "mixture", "--d", "20", "--T", "60", "--p2", "0", "0.25", "0.5",
                            "--ridge", "0", "0.1", "--spectrum", "power-law", "--beta", "1.5", "--r", "0.5", "--seeds",
                            "96", "--quiet", "--csv", str(csv))  # same shapes as test_compare_mixture_json
    assert code == 0, err
    assert "test_error" in stdout and "± sem" in stdout
    assert csv.read_text().splitlines()[0] == "p2,n_synthetic,ridge,test_error,sem,seeds"
    assert len(csv.read_text().splitlines()) == 7
    code, stdout, err = run(capsys, "theory", "--model", "mixture", "--mixing", "iterative", "--d", "10", "--T", "40",
                            "--p2", "1", "--generations", "0", "3", "--c2", "0.5", "--sigma", "0.1", "--json")
    assert code == 0, err
    rows = json.loads(stdout)["results"]
    assert [r["generation"] for r in rows] == [0, 3]
    assert rows[0]["test_error"] == pytest.approx(0.5)
    assert rows[1]["test_error"] == pytest.approx(0.5 + 3 * 0.01 * 10 / 30)  # p2 = 1: c0^2 + t sigma^2 u


@pytest.mark.slow
def test_compare_iterative_and_weighted_slow(capsys):
    code, stdout, err = run(capsys, "compare", "--model", "mixture", "--mixing", "iterative", "--d", "20", "--T", "80",
                            "--p2", "0.5", "0.9", "--generations", "0", "1", "3", "6", "--c2", "0.5", "--seeds", "200",
                            "--quiet", "--finite-size", "--json")
    assert code == 0, err
    assert_agreement(json.loads(stdout)["results"])
    code, stdout, err = run(capsys, "compare", "--model", "mixture", "--mixing", "weighted", "--d", "20", "--T", "100",
                            "--p2", "0.4", "--alpha", "0", "0.2", "0.6", "1", "--c2", "1", "--sigma", "1", "--seeds", "200",
                            "--quiet", "--json")
    assert code == 0, err
    assert_agreement(json.loads(stdout)["results"])


def test_help_lists_strong_flags(capsys):
    code, out, _ = run(capsys, "compare", "--help")
    assert code == 0
    for flag in ("--p2", "--c2", "--width", "--mixing", "--alpha", "--strong-sigma2", "--strong-delta"):
        assert flag in out


@pytest.mark.parametrize("argv,word", [
    (["theory", "--model", "mixture", "--p2", "1.5"], "--p2"),
    (["theory", "--model", "random-projection"], "--width"),
    (["theory", "--model", "random-projection", "--width", "10", "--ridge", "0"], "--ridge"),
    (["theory", "--model", "mixture", "--mixing", "weighted"], "--alpha"),
    (["theory", "--model", "mixture", "--alpha", "0.3"], "--alpha"),
    (["theory", "--model", "mixture", "--width", "30"], "--width"),
    (["theory", "--model", "mixture", "--mixing", "weighted", "--alpha", "0.3", "--ridge", "0.1"], "ridge > 0"),
    (["theory", "--model", "mixture", "--mixing", "weighted", "--alpha", "1", "--d", "100", "--T", "300"], "--alpha"),
    (["theory", "--model", "mixture", "--mixing", "iterative", "--d", "50", "--T", "40"], "--T"),
    (["theory", "--model", "mixture", "--mixing", "iterative", "--ridge", "0", "0.1"], "--ridge"),
    (["theory", "--model", "mixture", "--per-mode"], "--per-mode"),
    (["theory", "--model", "mixture", "--synthetic-fraction", "0.3"], "--p2"),
    (["theory", "--model", "mixture", "--c2", "-1"], "--c2"),
    (["theory", "--model", "random-projection", "--width", "0", "--ridge", "0.1"], "--width"),
    (["theory", "--model", "random-projection", "--width", "10", "--ridge", "0.1", "--mixing", "weighted"], "--mixing"),
    (["theory", "--model", "mixture", "--strong-delta", "teacher"], "--strong-delta"),
])
def test_bad_input_exit2_one_line(capsys, argv, word):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and word in err and "Traceback" not in err


def test_retraining_compare_and_golden_weight(capsys):
    """--mixing retraining: exact theory (n >= d + 2) vs the simulator, and the golden-ratio weight."""
    code, out, err = run(capsys, "compare", "--model", "mixture", "--mixing", "retraining", "--d", "8", "--T", "24",
                         "--sigma", "1", "--real-weight", "0.5", "0.618034", "1", "--generations", "0", "2", "20",
                         "--seeds", "300", "--json", "--quiet")
    assert code == 0, err
    p = json.loads(out)
    assert p["summary"]["optimal_real_weight"] == pytest.approx((5**0.5 - 1) / 2, abs=1e-12)
    rows = {(r["real_weight"], r["generation"]): r for r in p["results"]}
    assert len(rows) == 9 and all(abs(r["z"]) < 4 for r in rows.values())  # exact theory: no allowance
    # independent closed form at n >= d + 2: E_0 = sigma^2 d/(n - d - 1); real-only (w = 1) stays there;
    # at the fixed point the variance factor is f(w) = (w^2 + (1 - w)^2)/(w (2 - w)) with f(w*) = w*
    e0 = 8 / (24 - 8 - 1)
    assert rows[(1.0, 20)]["theory"] == pytest.approx(e0, rel=1e-12)
    assert rows[(0.618034, 20)]["theory"] == pytest.approx(0.618034 * e0, rel=1e-5)
    assert rows[(0.5, 20)]["theory"] == pytest.approx((0.25 + 0.25) / 0.75 * e0, rel=1e-5)
    # bad input: ridge in theory, missing weights, weight 0, flags of other mixings
    for argv, needle in ((["--real-weight", "0.5", "--ridge", "0.1"], "ridge"), ([], "--real-weight"),
                         (["--real-weight", "0"], "--real-weight"), (["--real-weight", "0.5", "--p2", "0.3"], "--p2")):
        code, _, err = run(capsys, "theory", "--model", "mixture", "--mixing", "retraining", "--d", "8", "--T", "24", *argv)
        assert code == 2 and needle in err, (argv, err)
    code, _, err = run(capsys, "theory", "--model", "mixture", "--real-weight", "0.5", "--d", "8", "--T", "24")
    assert code == 2 and "--real-weight" in err
