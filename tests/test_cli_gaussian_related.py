"""CLI for the THEORY.md §7 scenarios: ``--model gaussian --gauss-scenario {bertrand, barzilai-shamir,
suresh-discrete}`` and ``--model kde`` (JSON layout, agreement summaries, bad input exits 2 with one line).
"""

import json
import math

import numpy as np
import pytest

from kcollapse import gaussian as kg
from _cli_helpers import run





def test_bertrand_theory_and_compare(capsys):
    code, out, err = run(capsys, "theory", "--model", "gaussian", "--gauss-scenario", "bertrand", "--T0", "10",
                         "--gauss-synthetic", "20", "--gauss-real", "fresh", "--generations", "0", "1", "5", "--json")
    assert code == 0, err
    p = json.loads(out)
    assert p["config"]["lambda"] == 2.0 and p["config"]["contraction"]["population"] == pytest.approx(2 / 3)
    e_star = 30 / (100 + 400 + 20)  # sigma^2 N/(n^2 + 2 n m + m)
    assert p["config"]["fixed_point"]["mean_sq_error"] == pytest.approx(e_star, rel=1e-12)
    assert [r["n"] for r in p["results"]] == [1, 5]
    assert p["results"][0]["mean_sq_error"] == pytest.approx(0.1) and p["results"][1]["marginal_variance"] == pytest.approx(1.0)
    code, out, err = run(capsys, "compare", "--model", "gaussian", "--gauss-scenario", "bertrand", "--T0", "10",
                         "--gauss-synthetic", "20", "--gauss-init-offset", "1", "--generations", "1", "3", "10",
                         "--seeds", "1000", "--quiet", "--json")
    assert code == 0, err
    p = json.loads(out)
    assert p["summary"]["max_abs_z"] <= 4 and p["summary"]["points"] == 8 and p["config"]["init"] == "given"


def test_suresh_discrete_theory_and_compare(capsys):
    code, out, err = run(capsys, "theory", "--model", "gaussian", "--gauss-scenario", "suresh-discrete", "--T0", "50",
                         "--gauss-counts", "1", "4", "--generations", "0", "2", "8", "--json")
    assert code == 0, err
    p = json.loads(out)
    ex = kg.survival_probability([1, 4], [0, 2, 8], 50)
    got = np.array([[r["survival"] for r in p["results"] if r["n"] == g] for g in (0, 2, 8)])
    np.testing.assert_allclose(got, ex, rtol=1e-14)
    assert all(r["survival"] >= r["suresh_bound"] for r in p["results"])
    assert p["config"]["corpus"] == [1, 4, 45]
    code, out, err = run(capsys, "compare", "--model", "gaussian", "--gauss-scenario", "suresh-discrete", "--T0", "50",
                         "--gauss-counts", "1", "4", "--generations", "2", "8", "--seeds", "500", "--quiet", "--json")
    assert code == 0, err
    s = json.loads(out)["summary"]
    assert s["max_abs_z"] <= 4 and s["bounds_violated"] == 0 and s["points"] == 6


def test_barzilai_shamir_bound_rows(capsys):
    code, out, err = run(capsys, "compare", "--model", "gaussian", "--gauss-scenario", "barzilai-shamir", "--T0", "8",
                         "--gauss-growth", "1.5", "--generations", "1", "10", "40", "--seeds", "400", "--quiet", "--json")
    assert code == 0, err
    p = json.loads(out)
    assert p["config"]["mode"] == "accumulate" and p["config"]["scenario"] == "barzilai-shamir"
    rows = [r for r in p["results"] if r["quantity"] == "mean_sq_error_uniform_upper_bound"]
    assert len(rows) == 3 and all(r["holds"] and r["theory"] == pytest.approx(2 / 8) for r in rows)
    assert p["summary"]["bounds_violated"] == 0 and p["summary"]["max_abs_z"] <= 4


def test_kde_theory_and_compare(capsys):
    code, out, err = run(capsys, "theory", "--model", "kde", "--kde-scenario", "replace", "--T0", "10",
                         "--kde-bandwidth", "0.5", "--generations", "0", "4", "--json")
    assert code == 0, err
    rows = json.loads(out)["results"]
    msq, _ = __import__("kcollapse.kde", fromlist=["x"]).replace_closed_forms(np.array([0, 4]), 10, 0.5)
    np.testing.assert_allclose([r["mean_sq_error"] for r in rows], msq, rtol=1e-12)
    s2 = 1 + 5 * 0.25
    assert rows[1]["nll_lower_bound"] == pytest.approx(0.5 * math.log(2 * math.pi * s2) + 1 / (2 * s2), rel=1e-12)
    code, out, err = run(capsys, "compare", "--model", "kde", "--kde-scenario", "accumulate", "--T0", "6",
                         "--generations", "0", "5", "--seeds", "100", "--kde-test-points", "16", "--quiet", "--json")
    assert code == 0, err
    p = json.loads(out)
    assert set(p["summary"]["per_mode"]) == {"accumulate"} and p["summary"]["points"] == 6
    assert p["summary"]["max_abs_z"] <= 4 and p["summary"]["bounds_violated"] == 0
    assert {"n", "mode", "quantity", "kind", "theory", "simulation", "sem", "z"} <= set(p["results"][0])


@pytest.mark.slow
def test_kde_compare_all_modes_text_output(capsys):
    code, out, err = run(capsys, "compare", "--model", "kde", "--T0", "6", "--generations", "0", "5",
                         "--seeds", "100", "--kde-test-points", "16", "--quiet")
    assert code == 0, err
    assert "NLL bounds hold at 12/12 points" in out
    assert all(m in out for m in ("replace: test NLL", "accumulate: test NLL", "subsample: test NLL"))


@pytest.mark.parametrize("argv,needle", [
    (["--gauss-synthetic", "5"], "--gauss-synthetic does not apply"),
    (["--gauss-scenario", "bertrand"], "needs --gauss-synthetic"),
    (["--gauss-scenario", "bertrand", "--gauss-synthetic", "5", "--gauss-dim", "2"], "--gauss-dim does not apply"),
    (["--gauss-scenario", "bertrand", "--gauss-synthetic", "-1"], "--gauss-synthetic"),
    (["--gauss-scenario", "suresh-discrete", "--gauss-counts", "150", "100"], "sum to 250"),
    (["--gauss-scenario", "suresh-discrete", "--mode", "accumulate"], "--mode does not apply"),
    (["--gauss-scenario", "suresh-discrete", "--gauss-counts", "0"], "--gauss-counts"),
])
def test_gaussian_scenario_bad_input_exits_2(capsys, argv, needle):
    code, out, err = run(capsys, "theory", "--model", "gaussian", "--T0", "200", *argv)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("argv,needle", [
    (["--kde-bandwidth", "0"], "--kde-bandwidth"),
    (["--mode", "accumulate"], "--mode"),
    (["--T0", "1"], "--T0"),
    (["--kde-scenario", "mix"], "invalid choice"),
])
def test_kde_bad_input_exits_2(capsys, argv, needle):
    code, out, err = run(capsys, "theory", "--model", "kde", *argv)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
