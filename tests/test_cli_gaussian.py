"""CLI ``--model gaussian``: JSON layout, agreement summary, outputs, and bad input (exit 2, one line)."""

import json
import math

import numpy as np
import pytest
import scipy.special as sp

from _cli_helpers import run

# Same refit count / reported generations as tests/test_gaussian.py (compiled code is shared).
GENS = ["--generations", "1", "3", "10", "40"]




def test_theory_json_replace_matches_closed_form(capsys):
    code, out, err = run(capsys, "theory", "--model", "gaussian", "--T0", "20", *GENS, "--gauss-sigma", "2", "--json")
    assert code == 0, err
    payload = json.loads(out)
    cfg, rows = payload["config"], payload["results"]
    assert cfg["model"] == "gaussian" and cfg["mode"] == "replace" and cfg["estimator"] == "unbiased"
    assert {"estimator", "w2_sq", "sem", "model"} <= set(cfg["conventions"])
    assert cfg["batch_size_at_generations"] == [20, 20, 20, 20]
    c4 = math.sqrt(2 / 19) * math.exp(sp.gammaln(10) - sp.gammaln(9.5))
    for r in rows:  # THEORY.md §6.1: E W2^2 = sigma^2 [g/M + 2(1 - c4^g)], E(mu_g - mu)^2 = g sigma^2/M
        g = r["n"]
        assert r["w2_sq"] == pytest.approx(4 * (g / 20 + 2 * (1 - c4**g)), rel=1e-9)
        assert r["mean_sq_error"] == pytest.approx(4 * g / 20, rel=1e-12)
        assert r["variance"] == pytest.approx(4.0, rel=1e-12)


def test_theory_accumulate_prints_kazdan_limits(capsys):
    code, out, err = run(capsys, "theory", "--model", "gaussian", "--mode", "accumulate", "--T0", "10", *GENS)
    assert code == 0, err
    assert "mle variance" in out and "Kazdan" in out
    limit = math.sin(math.pi / math.sqrt(10)) / (math.pi / math.sqrt(10))
    assert f"E tr Sigma -> {limit:.6g}" in out


def test_compare_json_agreement_and_layout(capsys):
    code, out, err = run(capsys, "compare", "--model", "gaussian", "--T0", "20", *GENS, "--seeds", "400",
                         "--gauss-eps", "0.9", "--quiet", "--json")
    assert code == 0, err
    payload = json.loads(out)
    s = payload["summary"]
    assert {"max_abs_z", "max_abs_relative_gap", "points", "unreliable_points", "bound_points",
            "bounds_violated"} <= set(s)
    assert s["points"] >= 12 and s["max_abs_z"] <= 4.0 and s["bounds_violated"] == 0
    row = payload["results"][0]
    assert {"n", "quantity", "kind", "theory", "simulation", "sem", "z", "relative_gap", "reliable", "holds",
            "formula", "chains"} <= set(row)
    assert {r["quantity"] for r in payload["results"]} >= {"w2_sq", "w2_sq_var", "log_det_change",
                                                           "p_scale_above_eps_suresh", "w2_sq_lower_bound"}
    assert payload["config"]["chains_completed"] == 400 and payload["config"]["sampler"] == "statistics"


def test_simulate_writes_json_npz_csv(capsys, tmp_path):
    out, csv = tmp_path / "g.json", tmp_path / "g.csv"
    code, stdout, err = run(capsys, "simulate", "--model", "gaussian", "--mode", "accumulate", "--T0", "10", *GENS,
                            "--seeds", "40", "--quiet", "--out", str(out), "--csv", str(csv))
    assert code == 0, err
    assert "W2^2" in stdout
    payload = json.loads(out.read_text())
    with np.load(tmp_path / "g.npz") as z:
        assert z["w2_sq_per_chain"].shape == (40, 4)
        np.testing.assert_allclose(z["w2_sq_per_chain"].mean(0)[2], payload["results"][2]["w2_sq"])
    assert csv.read_text().splitlines()[0].startswith("n,mean_sq_error,mean_sq_error_sem")


@pytest.mark.parametrize("argv,needle", [
    (["--mode", "mix"], "--mode replace or accumulate"),
    (["--d", "5"], "--d (use --gauss-dim) does not apply"),
    (["--ridge", "0.1"], "--ridge does not apply"),
    (["--estimator", "monte-carlo"], "--estimator (use --gauss-estimator) does not apply"),
    (["--T0", "1"], "--T0"),
    (["--gauss-dim", "3", "--T0", "3"], "--gauss-dim + 1"),
    (["--gauss-mean-noise", "0.1", "--mode", "accumulate"], "--gauss-mean-noise"),
    (["--gauss-sampler", "samples", "--gauss-growth", "1"], "--gauss-growth 0"),
    (["--gauss-sigma", "0"], "--gauss-sigma"),
    (["--gauss-eps", "-1"], "--gauss-eps"),
    (["--seeds", "1"], "--seeds"),
])
def test_bad_input_exits_2_with_one_line(capsys, argv, needle):
    code, out, err = run(capsys, "compare", "--model", "gaussian", "--generations", "1", "--quiet", *argv)
    assert code == 2
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_help_documents_gauss_flags(capsys):
    code, out, _ = run(capsys, "compare", "--help")
    assert code == 0
    for flag in ("--gauss-sigma", "--gauss-dim", "--gauss-estimator", "--gauss-growth", "--gauss-mean-noise",
                 "--gauss-sampler", "--gauss-eps"):
        assert flag in out
