"""CLI ``--model pruning``: JSON layout, agreement, bad input (exit 2, one line)."""

import json

import pytest

from _cli_helpers import run





COMMON = ["--model", "pruning", "--d", "10", "--prune-samples", "200", "--prune-keep-correct", "0.9",
          "--prune-keep-wrong", "0.45"]


def test_theory_json(capsys):
    code, out, err = run(capsys, "theory", *COMMON, "--prune-flip-rates", "0.3", "0.6666666666666666", "0.9", "--json")
    assert code == 0, err
    payload = json.loads(out)
    cfg, rows = payload["config"], payload["results"]
    assert cfg["model"] == "pruning" and cfg["scenario"] == "independent"
    assert {"model", "classifier", "accuracy", "p_star", "sem"} <= set(cfg["conventions"])
    assert [r["p"] for r in rows] == pytest.approx([0.3, 2 / 3, 0.9])
    assert all(r["p_star"] == pytest.approx(2 / 3) for r in rows)
    assert rows[1]["accuracy"] == pytest.approx(0.5, abs=1e-12)  # exact crossing at p*
    assert rows[0]["accuracy"] > 0.5 > rows[2]["accuracy"]


def test_compare_independent_agrees(capsys):
    code, out, err = run(capsys, "compare", *COMMON, "--prune-flip-rates", "0.3", "0.6", "0.75", "--seeds", "2000",
                         "--quiet", "--json")
    assert code == 0, err
    payload = json.loads(out)
    s = payload["summary"]
    assert s["points"] == 3 and s["max_abs_z"] <= 4.0 and s["disagreements"] == 0
    assert {"N", "p", "accuracy", "simulation", "sem", "z", "relative_gap"} <= set(payload["results"][0])
    assert s["crossings"][0]["p_star"] == pytest.approx(2 / 3)


def test_compare_verifier_table(capsys):
    code, out, err = run(capsys, "compare", "--model", "pruning", "--prune-scenario", "verifier", "--d", "6",
                         "--prune-samples", "500", "--prune-flip-rates", "0.4", "0.8", "--seeds", "600", "--quiet")
    assert code == 0, err
    assert "summary: max |z|" in out and "P(wrong,kept)" in out


@pytest.mark.parametrize("argv,needle", [
    (["--T", "5"], "--T (use --prune-samples) does not apply"),
    (["--ridge", "0.1"], "--ridge does not apply"),
    (["--prune-flip-rates", "1.5"], "--prune-flip-rates"),
    (["--prune-keep-correct", "0", "--prune-keep-wrong", "0"], "nothing would ever be kept"),
    (["--prune-samples", "0"], "--prune-samples"),
    (["--prune-scenario", "verifier", "--prune-flip-rates", "0.0"], "strictly inside"),
    (["--prune-scenario", "verifier", "--d", "2"], "--d must be >= 3"),
    (["--seeds", "1"], "--seeds"),
])
def test_bad_input_exits_2_with_one_line(capsys, argv, needle):
    code, out, err = run(capsys, "compare", "--model", "pruning", "--quiet", *argv)
    assert code == 2
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_help_lists_prune_flags(capsys):
    code, out, _ = run(capsys, "compare", "--help")
    assert code == 0
    for flag in ("--prune-scenario", "--prune-samples", "--prune-flip-rates", "--prune-keep-correct",
                 "--prune-keep-wrong", "--prune-signal", "--prune-verifier-error", "--prune-error-angle"):
        assert flag in out
