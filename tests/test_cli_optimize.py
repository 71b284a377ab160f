"""CLI: ``kcollapse optimal-ridge``, ``crossover`` and ``fit-scaling`` (in-process, exit codes, JSON)."""

import json

import numpy as np
import pytest

from _cli_helpers import run

DFIG1 = ["--d", "300", "--T", "1000", "--T0", "600", "--sigma", "0.1", "--sigma0", "0.2"]
# One simulation set-up (and so one compilation) shared by the optimal-ridge --simulate and fit-scaling tests.
SIM = [*DFIG1, "--generations", "0", "3", "--seeds", "16", "--quiet", "--ridge",
       *(f"{v:.6g}" for v in np.logspace(-3, 0, 13))]




def test_optimal_ridge_json_at_d_fig1(capsys, tmp_path):
    out_path = tmp_path / "opt.json"
    code, out, err = run(capsys, "optimal-ridge", *DFIG1, "--generations", "0", "1", "3", "10", "--grid-check", "501",
                         "--json", "--out", str(out_path))
    assert code == 0, err
    payload = json.loads(out)
    assert json.loads(out_path.read_text()) == payload
    assert set(payload) == {"config", "environment", "results", "summary"}
    assert "ridge" in payload["config"]["conventions"]
    rows = payload["results"]
    assert [r["n"] for r in rows] == [0, 1, 3, 10]
    lams = [r["ridge_opt"] for r in rows]
    assert all(r["status"] == 0 for r in rows)
    assert np.all(np.diff(lams) > 0) and payload["summary"]["ridge_grows_with_n"] == {"1000.0": True}
    np.testing.assert_allclose(lams[0], 0.1**2 * 300 / 1000, rtol=1e-9)  # clean optimum sigma^2 d/T
    for r in rows:  # the independent dense-grid search agrees
        assert abs(r["grid_relative_gap"]) < 1e-3 and abs(r["grid_error_relative_gap"]) < 1e-6


def test_optimal_ridge_sweep_fits_ridge_exponent(capsys):
    code, out, err = run(capsys, "optimal-ridge", "--spectrum", "power-law", "--d", "300", "--T0", "600", "--sigma", "1",
                         "--sigma0", "1", "--generations", "0", "1", "--sweep-T", "1000", "3000", "10000", "30000",
                         "--grid-check", "0", "--json")
    assert code == 0, err
    s = json.loads(out)["summary"]
    assert s["ell_crit"] == pytest.approx(0.8)
    assert abs(s["ridge_exponent_fit"]["0"]["ell"] - 0.8) < 0.01  # clean: lambda* ~ T^-ell_crit
    assert s["ridge_exponent_fit"]["1"]["ell"] < 0.3  # fixed T0: lambda* levels off (ell -> 0, Cor 5.3 with b -> 0)


@pytest.mark.slow
def test_optimal_ridge_simulate(capsys, tmp_path):
    code, out, err = run(capsys, "optimal-ridge", *SIM, "--simulate", "--bootstrap", "200", "--grid-check", "0",
                         "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["config"]["simulation"]["seeds"] == 16
    for r in payload["results"]:
        assert r["sim_ci_low"] <= r["sim_ridge_opt"] <= r["sim_ci_high"]
        assert isinstance(r["theory_in_ci"], bool) and r["seeds"] == 16 and not r["sim_at_edge"]
        # 16 seeds at d = 300: the 95 % CI is about +-15 % (measured +-6 % to +-14 % with 64 seeds); the
        # systematic gap of the estimator and of the theory at d = 300 is ~1 %
        assert abs(np.log(r["sim_ridge_opt"] / r["ridge_opt"])) < 0.3
    assert payload["results"][1]["sim_ridge_opt"] > payload["results"][0]["sim_ridge_opt"]


def test_optimal_ridge_bad_input_exits_2(capsys):
    code, _, err = run(capsys, "optimal-ridge", "--mode", "accumulate", "--design", "fixed")
    assert code == 2 and "--mode accumulate" in err and "Traceback" not in err
    code, _, err = run(capsys, "optimal-ridge", "--ridge-bounds", "1", "0.1")
    assert code == 2 and "--ridge-bounds" in err
    code, _, err = run(capsys, "optimal-ridge", "--d", "300", "--T0", "100", "--generations", "1")
    assert code == 2 and "no theorem covers" in err


def test_crossover_kinds(capsys):
    code, out, err = run(capsys, "crossover", "collapse", *DFIG1, "--generations", "1", "3", "--ridge", "0",
                         "--T-bounds", "302", "1e6", "--json")
    assert code == 0, err
    rows = json.loads(out)["results"]
    for r in rows:  # Theorem 4.1 closed form T* = d + 1 + sigma^2 (T0 - d - 1)/(n sigma0^2)
        np.testing.assert_allclose(r["point"], 301 + 0.01 * 299 / (r["n"] * 0.04), rtol=1e-9)
        assert abs(r["residual"]) < 1e-9 and r["status"] == 0
    code, out, err = run(capsys, "crossover", "divergence", "--beta", "2", "--r", "0.375", "--json")
    assert code == 0, err
    r = json.loads(out)["results"][0]
    assert r["point"] == pytest.approx(0.4) and abs(r["residual"]) < 1e-12
    code, out, err = run(capsys, "crossover", "mixture", "--d", "100", "--sigma", "0.5", "--c2", "1", "--samples",
                         "1000", "--json")
    assert code == 0, err
    assert json.loads(out)["results"][0]["point"] == pytest.approx(0.125, rel=1e-9)  # Cor 1 quadratic root
    code, _, err = run(capsys, "crossover", "mixture", "--d", "100")
    assert code == 2 and "--samples" in err
    code, _, err = run(capsys, "crossover", "collapse", "--generations", "0")
    assert code == 2 and "n >= 1" in err


def _write_run(path, T, rows, **config):
    path.write_text(json.dumps({"config": {"T": T, **config}, "results": rows}))


def test_fit_scaling_recovers_known_exponents_from_files(capsys, tmp_path):
    """Files in the simulate --out layout with a known law: n = 0 ~ T^-0.6, n = 1 ~ T^+0.4."""
    rng = np.random.default_rng(0)
    files = []
    for T in np.logspace(3, 5, 9):
        rows = []
        for n, p in ((0, -0.6), (1, 0.4)):
            mean = 2.0 * T**p
            rows.append({"n": n, "ridge": T**-0.8, "test_error": mean * (1 + 0.01 * rng.standard_normal()),
                         "sem": 0.01 * mean, "seeds": 64})
        f = tmp_path / f"T{int(T)}.json"
        _write_run(f, float(T), rows, spectrum="power-law", beta=2.0, r=0.375, sigma=1.0, T0=600)
        files.append(str(f))
    code, out, err = run(capsys, "fit-scaling", *files, "--x", "T", "--group", "n", "--theory", "cor53", "--ell", "0.8",
                         "--json")
    assert code == 0, err
    payload = json.loads(out)
    res = {r["n"]: r for r in payload["results"]}
    assert res[0]["expected"] == pytest.approx(-0.6) and res[1]["expected"] == pytest.approx(0.4)
    for r in res.values():
        assert r["weights"] == "sem" and r["n_points"] == 9
        assert r["ci_low"] <= r["expected"] <= r["ci_high"] and r["consistent"]
    assert payload["summary"]["all_consistent"] is True
    # the excess over n = 0 (the collapse term): rows n = 1 minus rows n = 0 at the same T
    code, out, err = run(capsys, "fit-scaling", *files, "--excess-over", "n=0", "--json")
    assert code == 0, err
    (row,) = json.loads(out)["results"]
    excess = 2.0 * np.logspace(3, 5, 9) ** 0.4 - 2.0 * np.logspace(3, 5, 9) ** -0.6
    expected = float(np.polyfit(np.log(np.logspace(3, 5, 9)), np.log(excess), 1)[0])  # noise-free reference
    assert row["n"] == 1 and abs(row["exponent"] - expected) < 4 * row["exponent_se"]
    # --select on a text column (a sweep file with several schedules, as paper_figs/d_fig2.py writes)
    sweep = tmp_path / "sweep.json"
    rows = [{"schedule": sch, "T": float(T), "n": 0, "test_error": 2.0 * T**p, "sem": 0.01 * 2.0 * T**p}
            for sch, p in (("crit", -0.6), ("b_crit", -0.2)) for T in np.logspace(3, 5, 5)]
    sweep.write_text(json.dumps({"config": {"d": 300}, "results": rows}))
    code, out, err = run(capsys, "fit-scaling", str(sweep), "--select", "schedule=b_crit", "--json")
    assert code == 0, err
    assert json.loads(out)["results"][0]["exponent"] == pytest.approx(-0.2, abs=1e-9)
    # window, explicit expectations and the text table
    code, out, err = run(capsys, "fit-scaling", *files, "--window", "1e4", "1e5", "--expect", "0=-0.6", "--expect", "1=0.4")
    assert code == 0, err
    assert "exponent" in out and "+0.4" in out
    # bad input: duplicate x within a group, missing column, missing file
    code, _, err = run(capsys, "fit-scaling", *files, "--group", "none")
    assert code == 2 and "several rows" in err
    code, _, err = run(capsys, "fit-scaling", *files, "--x", "width")
    assert code == 2 and "'width' is missing" in err
    code, _, err = run(capsys, "fit-scaling", str(tmp_path / "nope.json"))
    assert code == 2 and "no such file" in err


def test_fit_scaling_reads_theory_outputs_and_bootstraps_seeds(capsys, tmp_path):
    # kcollapse theory --out, one file per T (the D-Fig2 schedule lambda = T^-0.8, small d)
    files = []
    for T in (200, 400, 800, 1600):
        f = tmp_path / f"th{T}.json"
        code, _, err = run(capsys, "theory", "--spectrum", "power-law", "--d", "50", "--T0", "100", "--sigma", "1",
                           "--sigma0", "1", "--T", str(T), "--ridge", str(T**-0.8), "--generations", "0", "1", "--out", str(f))
        assert code == 0, err
        files.append(str(f))
    code, out, err = run(capsys, "fit-scaling", *files, "--x", "T", "--json")
    assert code == 0, err
    rows = json.loads(out)["results"]
    assert [r["n"] for r in rows] == [0, 1] and all(r["weights"] == "none" for r in rows)
    assert rows[0]["exponent"] < 0 < rows[1]["exponent"] + 1  # clean decays; finite numbers throughout
    # a simulate --out file with its per-seed .npz (the layout of kcollapse.cli._write_outputs: arrays
    # generations, ridges, test_error_per_seed (seeds, generations, ridges)), written here with a known law
    rng = np.random.default_rng(4)
    ridges = np.logspace(-1, 1, 7)
    per_seed = 0.5 * ridges**0.7 * (1 + 0.2 * rng.standard_normal((40, 2, 7)))  # paired across ridges
    rows = [{"n": n, "ridge": float(r), "test_error": float(per_seed[:, n, j].mean()),
             "sem": float(per_seed[:, n, j].std(ddof=1) / np.sqrt(40)), "seeds": 40}
            for n in (0, 1) for j, r in enumerate(ridges)]
    f = tmp_path / "sim.json"
    _write_run(f, 100.0, rows, d=10)
    np.savez(tmp_path / "sim.npz", generations=np.arange(2), ridges=ridges, test_error_per_seed=per_seed)
    code, out, err = run(capsys, "fit-scaling", str(f), "--x", "ridge", "--bootstrap", "200", "--json")
    assert code == 0, err
    for r in json.loads(out)["results"]:
        assert r["bootstrap_paired"] is True and r["n_points"] == 7
        assert abs(r["exponent"] - 0.7) < 4 * r["bootstrap_se"]  # the truth, within 4 bootstrap standard errors
        assert r["bootstrap_ci_low"] < r["exponent"] < r["bootstrap_ci_high"]
        assert 0.5 < r["bootstrap_se"] / r["exponent_se"] < 2  # bootstrap and SEM-weighted errors agree


def test_fit_scaling_theory_column_separates_finite_size_bias(capsys, tmp_path):
    """A curve that is not a pure power law (2 T^0.4 + 30 T^-0.2, 'theory' column) observed with 0.2 % noise:
    the simulation's exponent agrees with the exponent the theory curve itself has on the window, not with
    the asymptotic 0.4; the difference is reported as finite_size_bias."""
    rng = np.random.default_rng(1)
    Ts = np.logspace(3, 5, 9)
    files = []
    for T in Ts:
        th = 2.0 * T**0.4 + 30.0 * T**-0.2
        rows = [{"n": 1, "ridge": T**-0.8, "theory": th, "simulation": th * (1 + 0.002 * rng.standard_normal()),
                 "sem": 0.002 * th, "seeds": 64}]
        f = tmp_path / f"T{int(T)}.json"
        _write_run(f, float(T), rows, spectrum="power-law", beta=2.0, r=0.375, sigma=1.0, T0=600)
        files.append(str(f))
    code, out, err = run(capsys, "fit-scaling", *files, "--y", "simulation", "--theory-column", "theory",
                         "--theory", "cor53", "--ell", "0.8", "--json")
    assert code == 0, err
    payload = json.loads(out)
    (r,) = payload["results"]
    logT = np.log(Ts)
    w = 1 / 0.002**2  # equal log-space weights: the weighted fit is the ordinary one
    th_slope = float(np.polyfit(logT, np.log(2.0 * Ts**0.4 + 30.0 * Ts**-0.2), 1, w=np.full(9, np.sqrt(w)))[0])
    assert r["theory_fit_exponent"] == pytest.approx(th_slope, abs=1e-9)
    assert abs(r["z_theory_fit"]) < 3 and r["consistent_theory_fit"] is True  # 0.2 % noise on 9 points
    assert r["expected"] == pytest.approx(0.4)
    assert r["finite_size_bias"] == pytest.approx(th_slope - 0.4, abs=1e-9) and r["finite_size_bias"] < -0.03
    assert r["consistent"] is False  # the asymptotic exponent is many error bars away at these sizes
    assert "all_consistent_with_theory_fit" in payload["summary"]
    code, _, err = run(capsys, "fit-scaling", *files, "--y", "simulation", "--theory-column", "nope")
    assert code == 2 and "--theory-column" in err
