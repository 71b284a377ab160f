"""CLI: JSON layout, outputs, and bad input (exit 2, one line, no traceback)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from kcollapse import theory
from kcollapse.cli import main
from _cli_helpers import run

SMALL = ["--d", "10", "--T", "30", "--T0", "25", "--generations", "0", "2", "--quiet"]




def test_simulate_json_layout(capsys):
    code, out, err = run(capsys, "simulate", *SMALL, "--ridge", "0", "0.1", "--seeds", "50", "--json")
    assert code == 0, err
    payload = json.loads(out)  # stdout is exactly one JSON object
    assert set(payload) == {"config", "environment", "results"}
    cfg, env, rows = payload["config"], payload["environment"], payload["results"]
    assert cfg["d"] == 10 and cfg["T"] == 30 and cfg["T0"] == 25 and cfg["seeds"] == 50
    assert "ridge" in cfg["conventions"] and "test_error" in cfg["conventions"]
    assert cfg["teacher_norm_sq"] == pytest.approx(1.0)
    assert {"jax_version", "backend", "device_count", "dtype"} <= set(env)
    assert [(r["n"], r["ridge"]) for r in rows] == [(0, 0.0), (0, 0.1), (2, 0.0), (2, 0.1)]
    for r in rows:
        assert {"n", "ridge", "test_error", "sem", "seeds"} <= set(r) and r["seeds"] == 50
    # the OLS rows agree with the exact Theorem 4.1 value
    for r in rows:
        if r["ridge"] == 0:
            exact = float(theory.ols_chain_exact(r["n"], 10, 30, 25, 0.1, 0.2))
            assert abs(r["test_error"] - exact) <= 4 * r["sem"]


def test_simulate_out_writes_json_npz_csv(capsys, tmp_path):
    out = tmp_path / "run.json"
    csv = tmp_path / "run.csv"
    code, stdout, err = run(capsys, "simulate", *SMALL, "--seeds", "6", "--out", str(out), "--csv", str(csv))
    assert code == 0, err
    assert "test_error" in stdout  # readable table without --json
    payload = json.loads(out.read_text())
    with np.load(tmp_path / "run.npz") as z:
        assert z["test_error_per_seed"].shape == (6, 3, 1)
        np.testing.assert_allclose(z["test_error_per_seed"].mean(0)[2, 0], payload["results"][1]["test_error"])
    assert csv.read_text().splitlines()[0].startswith("n,ridge,test_error,sem,seeds")
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]  # atomic writes cleaned up


def test_simulate_modes_and_spectrum_file(capsys, tmp_path):
    f = tmp_path / "spec.npz"
    np.savez(f, eigenvalues=np.linspace(1, 0.1, 10), coefficients=np.ones(10))
    code, out, err = run(capsys, "simulate", *SMALL, "--spectrum", "file", "--spectrum-file", str(f),
                         "--mode", "mix", "--synthetic-fraction", "0.5", "--seeds", "4", "--json")
    assert code == 0, err
    assert json.loads(out)["config"]["synthetic_fraction"] == 0.5


BAD = [
    (["--d", "-3"], "--d"),
    (["--T", "0"], "--T"),
    (["--T0", "-1"], "--T0"),
    (["--sigma", "-0.1"], "--sigma"),
    (["--sigma0", "nan"], "--sigma0"),
    (["--sigma", "inf"], "--sigma"),
    (["--ridge", "0.1", "-1"], "--ridge"),
    (["--generator-ridge", "-1"], "--generator-ridge"),
    (["--generations", "-2"], "--generations"),
    (["--mode", "mix", "--synthetic-fraction", "1.5"], "--synthetic-fraction"),
    (["--mode", "mix"], "--synthetic-fraction"),
    (["--synthetic-fraction", "0.5"], "--synthetic-fraction"),
    (["--mode", "average"], "--mode"),
    (["--design", "random"], "--design"),
    (["--seeds", "0"], "--seeds"),
    (["--d", "abc"], "--d"),
    (["--beta", "-1", "--spectrum", "power-law"], "--beta"),
    (["--spectrum", "file"], "--spectrum-file"),
    (["--spectrum", "file", "--spectrum-file", "/nonexistent.npz"], "--spectrum-file"),
    (["--dtype", "float16"], "--dtype"),
]


@pytest.mark.parametrize("extra,word", BAD, ids=lambda x: " ".join(x) if isinstance(x, list) else x)
def test_bad_input_exit2_one_line(capsys, extra, word):
    code, out, err = run(capsys, "simulate", "--quiet", *extra)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and word in lines[0], err
    assert "Traceback" not in err


def test_argparse_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["simulate", "--mode", "average"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--mode" in err


def test_spectrum_file_wrong_length(capsys, tmp_path):
    f = tmp_path / "spec.csv"
    np.savetxt(f, np.ones((7, 2)), delimiter=",")
    code, _, err = run(capsys, "simulate", "--d", "10", "--spectrum", "file", "--spectrum-file", str(f))
    assert code == 2 and "7 eigenvalues" in err and "--d" in err


def test_subprocess_exit_codes_no_traceback(tmp_path):
    """The real console entry point: bad input -> exit 2, one stderr line, no traceback."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    bad = subprocess.run([sys.executable, "-m", "kcollapse", "simulate", "--sigma", "-1"], capture_output=True,
                         text=True, env=env, timeout=300)
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1 and "--sigma" in bad.stderr and "Traceback" not in bad.stderr
    good = subprocess.run([sys.executable, "-m", "kcollapse", "simulate", *SMALL, "--seeds", "3", "--json"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert good.returncode == 0, good.stderr
    json.loads(good.stdout)


def test_demo_runs(capsys, tmp_path):
    code, out, err = run(capsys, "demo", "--seeds", "20", "--out-dir", str(tmp_path), "--quiet")
    assert code == 0, err
    assert "Thm 4.1" in out and "max |z|" in out
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    payload = json.loads((tmp_path / "demo.json").read_text())
    assert payload["results"][0]["theorem41_exact"] is not None


def _theory_oracle(d, T, T0, sigma, sigma0, ridge, n):
    """Independent isotropic closed forms (THEORY.md §1.2, §2.3), written out here in numpy."""
    phi, phi0 = d / T, d / T0
    b = ridge + phi - 1
    kappa = (b + np.sqrt(b * b + 4 * ridge)) / 2
    denom = (1 + kappa) ** 2 - phi
    clean = (kappa**2 * 1.0 + sigma**2 * phi) / denom
    rho = phi0 / (1 - phi0) * (1 / (1 + kappa) ** 2 + phi * kappa**2 / ((1 + kappa) ** 2 * denom))
    return clean + n * sigma0**2 * rho


def test_theory_json_matches_independent_formula(capsys):
    code, out, err = run(capsys, "theory", "--d", "50", "--T", "400", "--T0", "300", "--sigma", "0.3",
                         "--sigma0", "0.4", "--ridge", "0.05", "0.5", "--generations", "0", "3", "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert set(payload) == {"config", "environment", "results"}
    for r in payload["results"]:
        assert {"n", "ridge", "test_error", "bias", "variance", "collapse"} <= set(r)
        ref = _theory_oracle(50, 400, 300, 0.3, 0.4, r["ridge"], r["n"])
        assert r["test_error"] == pytest.approx(ref, rel=1e-8)
        assert r["bias"] + r["variance"] + r["collapse"] == pytest.approx(r["test_error"], rel=1e-12)


def test_theory_uncovered_configuration_is_an_error(capsys):
    code, out, err = run(capsys, "theory", "--generator-ridge", "0.1")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "generator" in err and out == ""
    code, _, err = run(capsys, "theory", "--d", "100", "--T0", "50", "--sigma0", "0.2")
    assert code == 2 and "no theorem covers" in err


def test_compare_json(capsys, tmp_path):
    code, out, err = run(capsys, "compare", *SMALL, "--ridge", "0", "0.1", "--seeds", "200", "--json",
                         "--per-mode", "--out", str(tmp_path / "c.json"))
    assert code == 0, err
    payload = json.loads(out)
    assert {"max_abs_z", "max_abs_relative_gap"} <= set(payload["summary"])
    for r in payload["results"]:
        assert r["z"] == pytest.approx((r["simulation"] - r["theory"]) / r["sem"])
        assert abs(r["z"]) <= 4 + 0.03 * abs(r["theory"]) / r["sem"]
    with np.load(tmp_path / "c.npz") as z:
        assert z["per_mode_mean"].shape == (3, 2, 10) and z["theory_per_mode"].shape == (3, 2, 10)


def test_interrupt_keeps_completed_seeds(capsys, tmp_path, monkeypatch):
    """Ctrl-C after the first chunk: exit 130, the completed seeds are written, marked interrupted."""
    import kcollapse.distributed as ks  # the CLI runs each chunk through kcollapse.distributed

    real = ks.simulate_chain
    calls = {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(ks, "simulate_chain", flaky)
    out = tmp_path / "part.json"
    code, _, err = run(capsys, "simulate", *SMALL, "--seeds", "20", "--batch-size", "8", "--out", str(out))
    assert code == 130 and "kept 8/20" in err
    payload = json.loads(out.read_text())
    assert payload["config"]["interrupted"] is True and payload["config"]["seeds_completed"] == 8
    assert all(r["seeds"] == 8 for r in payload["results"])
