"""The paper-figure scripts run end to end (quick mode) and write image + numbers."""

import importlib.util
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "paper_figs" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_d_fig1_quick(tmp_path):
    assert _load("d_fig1").main(["--quick", "--out-dir", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "d_fig1.json").read_text())
    assert (tmp_path / "d_fig1.png").stat().st_size > 10_000
    # n >= 1 curves lie above n = 0 at small ridge (collapse), in simulation and theory
    sim, th = data["left"]["simulation"], data["left"]["theory"]
    assert sim[3][0] > sim[1][0] > sim[0][0] and th[3][0] > th[1][0] > th[0][0]
