"""CLI ``--model tails`` for the Hutter++ bigram scenarios and the chain from a cut start law."""

import json

import numpy as np
import pytest

import kcollapse.tails as kt
from _cli_helpers import run




def test_compare_bigram_top_k_json(capsys):
    code, out, err = run(capsys, "compare", "--model", "tails", "--tail-scenario", "bigram-top-k", "--tail-k", "5",
                         "--tail-T", "10", "100", "--seeds", "200", "--zipf-vocab", "16384", "--json", "--quiet")
    assert code == 0, err
    payload = json.loads(out)
    assert "Thm 4.2" in payload["config"]["theorem"] and "bigram" in payload["config"]["conventions"]
    assert payload["summary"]["points"] == 2
    exact = np.asarray(kt.bigram_error([10, 100], 1.5, 5))
    for r, e in zip(payload["results"], exact):
        assert r["theory"] == pytest.approx(float(e), rel=1e-12)
        assert r["sem_bound"] is None  # no variance bound for bigrams: the sample SEM is used
        assert -4 * r["sem"] <= r["simulation"] - r["theory"] <= 4 * r["sem"] + r["truncation_bound"]


def test_theory_generations_from_cut_law(capsys):
    code, out, err = run(capsys, "theory", "--model", "tails", "--tail-scenario", "generations", "--tail-k", "30",
                         "--T0", "40", "--tail-T", "40", "--generations", "0", "2", "--json")
    assert code == 0, err
    rows = json.loads(out)["results"]
    exact = np.asarray(kt.generations_error([40.0], 40, 2, 1.5, law=kt.top_k(1.5, 30)))[0]
    assert [r["n"] for r in rows] == [0, 2]
    for r in rows:
        assert r["test_error"] == pytest.approx(exact[r["n"]], rel=1e-12)


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--tail-scenario", "bigram-top-k"], "needs --tail-k"),
        (["--tail-scenario", "bigram", "--tail-k", "5"], "--tail-k does not apply"),
        (["--tail-scenario", "generations", "--tail-k", "5", "--tail-beta-ai", "3"], "starts from one law"),
        (["--tail-scenario", "generations", "--tail-fraction", "0.5"], "--tail-fraction with --tail-scenario generations"),
        (["--tail-scenario", "bigram", "--tail-T", "2.5"], "invalid size"),
    ],
)
def test_bad_input_exits_2(capsys, argv, needle):
    code, out, err = run(capsys, "theory", "--model", "tails", *argv, "--json")
    assert code == 2 and needle in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1
