"""Seeds sharded over several devices and over several processes give the single-device numbers.

Multi-device: 4 emulated CPU devices (``--xla_force_host_platform_device_count=4``) in a child
process. Multi-host: 2 processes x 2 CPU devices joined by ``jax.distributed`` on 127.0.0.1 (gloo
collectives), through the CLI's ``--distributed`` flags; process 0 writes the result.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import kcollapse as kc

PROBLEM = ["--spectrum", "power-law", "--d", "12", "--T0", "24", "--T", "30", "--sigma", "0.3", "--sigma0", "0.5",
           "--ridge", "0", "0.05", "--generations", "0", "1", "3", "--seeds", "10", "--seed", "4", "--quiet"]


def _env(n_devices):
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={n_devices}"
    env["JAX_PLATFORMS"] = "cpu"
    return env


def _reference():
    spec = kc.spectra.power_law(12, 2.0, 0.375)
    cfg = kc.ChainConfig(samples_per_generation=24, downstream_samples=30, n_generations=3,
                         generator_noise=0.5, label_noise=0.3)
    return kc.simulate_chain(jax.random.key(4), spec, cfg, ridges=[0.0, 0.05], n_seeds=10, devices=1)


def test_four_devices_match_one():
    script = textwrap.dedent("""
        import jax, numpy as np
        jax.config.update("jax_enable_x64", True)
        import kcollapse as kc
        assert jax.local_device_count() == 4, jax.devices()
        spec = kc.spectra.power_law(12, 2.0, 0.375)
        cfg = kc.ChainConfig(samples_per_generation=24, downstream_samples=30, n_generations=3,
                             generator_noise=0.5, label_noise=0.3)
        one = kc.simulate_chain(jax.random.key(4), spec, cfg, ridges=[0.0, 0.05], n_seeds=10, devices=1)
        four = kc.simulate_chain(jax.random.key(4), spec, cfg, ridges=[0.0, 0.05], n_seeds=10)  # default: all 4
        odd = kc.simulate_chain(jax.random.key(4), spec, cfg, ridges=[0.0, 0.05], n_seeds=10, batch_size=3)
        for r in (four, odd):
            np.testing.assert_allclose(r.per_seed, one.per_seed, rtol=1e-12)
            np.testing.assert_allclose(r.mc_per_seed, one.mc_per_seed, rtol=1e-12)
            np.testing.assert_array_equal(r.seed_indices, one.seed_indices)
        np.save("{out}", four.per_seed)
    """)
    out = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"kc_four_{os.getpid()}.npy")
    proc = subprocess.run([sys.executable, "-c", script.replace("{out}", out)], env=_env(4), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # and the 4-device numbers equal this process's single-device run
    np.testing.assert_allclose(np.load(out), _reference().per_seed, rtol=1e-12)
    os.remove(out)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one(tmp_path):
    port = _free_port()
    out = tmp_path / "multi.json"
    procs = []
    for pid in range(2):
        args = [sys.executable, "-m", "kcollapse", "simulate", *PROBLEM, "--distributed",
                "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(pid),
                "--out", str(out), "--json"]
        procs.append(subprocess.Popen(args, env=_env(2), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = []
    for p in procs:
        try:
            outs.append(p.communicate(timeout=600))
        except subprocess.TimeoutExpired:  # pragma: no cover - a hang is a failure, not a skip
            for q in procs:
                q.kill()
            pytest.fail("distributed run did not finish in 600 s")
    for p, (so, se) in zip(procs, outs):
        assert p.returncode == 0, se[-3000:]
    assert outs[1][0] == ""  # only process 0 prints
    payload = json.loads(outs[0][0])
    assert payload["config"]["seeds_completed"] == 10
    arrays = np.load(tmp_path / "multi.npz")
    ref = _reference()
    np.testing.assert_array_equal(arrays["seed_indices"], np.arange(10))
    np.testing.assert_allclose(arrays["test_error_per_seed"], ref.per_seed, rtol=1e-12)
    np.testing.assert_allclose(arrays["monte_carlo_test_error_per_seed"], ref.mc_per_seed, rtol=1e-12)
    means = {(r["n"], r["ridge"]): r["test_error"] for r in payload["results"]}
    assert means[(3, 0.05)] == pytest.approx(ref.mean[3, 1], rel=1e-12)


def test_distributed_flags_must_be_complete(capsys):
    from kcollapse.cli import main

    assert main(["simulate", "--distributed", "--coordinator", "127.0.0.1:1", "--seeds", "2"]) == 2
    assert "needs all of coordinator address" in capsys.readouterr().err
