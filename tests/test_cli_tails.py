"""CLI ``--model tails``: JSON layout, outputs, agreement, and bad input (exit 2, one line)."""

import json

import numpy as np
import pytest

import kcollapse.tails as kt
from kcollapse.cli import make_parser
from _cli_helpers import run

GEN = ["--model", "tails", "--tail-scenario", "generations", "--zipf-beta", "1.5", "--tail-T", "100", "400",
       "--T0", "256", "--generations", "0", "1", "5"]




def test_theory_json_matches_the_library(capsys):
    code, out, err = run(capsys, "theory", *GEN, "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert set(payload) == {"config", "environment", "results"}
    cfg = payload["config"]
    assert cfg["model"] == "tails" and cfg["scenario"] == "generations" and cfg["generator_samples"] == 256
    assert "test_error" in cfg["conventions"] and "Thm 2.4" in cfg["theorem"]
    rows = payload["results"]
    assert [(r["n"], r["T"]) for r in rows] == [(0, 100), (0, 400), (1, 100), (1, 400), (5, 100), (5, 400)]
    exact = np.asarray(kt.generations_error([100.0, 400.0], 256, 5, 1.5))
    for r in rows:
        j = [100, 400].index(r["T"])
        assert r["test_error"] == pytest.approx(exact[j, r["n"]], rel=1e-12)
        assert r["leading_order"] == pytest.approx(float(kt.generations_law(float(r["T"]), 256, r["n"], 1.5)), rel=1e-12)


def test_compare_json_layout_and_agreement(capsys):
    code, out, err = run(capsys, "compare", "--model", "tails", "--tail-scenario", "grokking", "--zipf-beta", "2",
                         "--tail-T", "30", "300", "3000", "--tail-k", "10", "--tail-fraction", "0.05",
                         "--seeds", "400", "--zipf-vocab", "65536", "--json", "--quiet")  # = test_tails' setting
    assert code == 0, err
    payload = json.loads(out)
    s = payload["summary"]
    assert set(s) >= {"max_abs_z", "max_abs_relative_gap", "points"} and s["points"] == 3
    for r in payload["results"]:
        assert {"n", "T", "theory", "simulation", "sem", "z", "relative_gap", "seeds"} <= set(r)
        sem = max(r["sem"], r["sem_bound"], 1e-12)
        assert r["z"] == pytest.approx((r["simulation"] - r["theory"]) / sem)
        # criterion of tests/test_tails.py: 4 SEM + the one-sided truncation bias
        assert -4 * sem <= r["simulation"] - r["theory"] <= 4 * sem + r["truncation_bound"]
    assert s["max_abs_z"] == pytest.approx(max(abs(r["z"]) for r in payload["results"]))


def test_simulate_out_npz_csv_and_table(capsys, tmp_path):
    out, csv = tmp_path / "t.json", tmp_path / "t.csv"
    code, stdout, err = run(capsys, "simulate", "--model", "tails", "--tail-scenario", "top-k", "--tail-k", "20",
                            "--tail-T", "50", "500", "--seeds", "7", "--zipf-vocab", "4096", "--out", str(out),
                            "--csv", str(csv), "--quiet")
    assert code == 0, err
    assert "test_error" in stdout and "Thm 2.1" in stdout  # readable table without --json
    payload = json.loads(out.read_text())
    with np.load(tmp_path / "t.npz") as z:
        assert z["test_error_per_seed"].shape == (7, 1, 2)
        np.testing.assert_allclose(z["test_error_per_seed"].mean(0)[0, 1], payload["results"][1]["test_error"])
    assert csv.read_text().splitlines()[0].startswith("n,T,test_error,sem,seeds")


def test_theory_text_output_and_size_notation(capsys):
    code, out, err = run(capsys, "theory", "--model", "tails", "--tail-scenario", "narrow", "--tail-temperature", "0.5",
                         "--tail-T", "1e3", "1e6")
    assert code == 0, err
    assert "Cor 2.3" in out and "leading order" in out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith("0 ")]
    assert [int(r[1]) for r in rows] == [1000, 1000000]
    assert float(rows[0][2]) == pytest.approx(float(kt.narrowing_error(1e3, 1.5, beta_ai=3.0)), rel=1e-5)


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--zipf-beta", "1.0"], "--zipf-beta must be > 1"),
        (["--tail-scenario", "top-k"], "needs --tail-k"),
        (["--tail-k", "5"], "--tail-k does not apply to --tail-scenario clean"),
        (["--tail-scenario", "narrow", "--tail-beta-ai", "3", "--tail-temperature", "0.5"], "exactly one of"),
        (["--tail-scenario", "narrow", "--tail-temperature", "2"], "need tau < beta"),
        (["--tail-scenario", "grokking", "--tail-k", "5", "--tail-fraction", "1.5"], "--tail-fraction must lie in [0, 1]"),
        (["--tail-T", "0"], "--tail-T must be an integer >= 1"),
        (["--tail-T", "1.5"], "invalid size"),
        (["--tail-scenario", "top-k", "--tail-k", "5000", "--zipf-vocab", "100"], "--zipf-vocab"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, argv, needle):
    command = "simulate" if "--zipf-vocab" in argv else "theory"
    code, out, err = run(capsys, command, "--model", "tails", *argv, "--quiet" if command == "simulate" else "--json")
    assert code == 2 and needle in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1


def test_flags_are_namespaced_and_documented(capsys):
    parser = make_parser()
    sub = parser._subparsers._group_actions[0].choices
    for command in ("simulate", "theory", "compare"):
        p = sub[command]
        groups = [g for g in p._action_groups if g.title and g.title.startswith("tails model")]
        assert len(groups) == 1
        flags = [o for a in groups[0]._group_actions for o in a.option_strings]
        assert flags and all(f.startswith(("--zipf-", "--tail-")) for f in flags), flags
        assert "--tail-scenario" in p.format_help()
