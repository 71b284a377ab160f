"""Test-suite configuration: float64 on, strict dtype promotion, hypothesis profiles."""

import gc
import os

import jax
import pytest
from hypothesis import settings

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")

settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def key():
    return jax.random.key(20241121)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module.

    One pytest process compiles well over a thousand XLA programs; keeping them all alive grew the
    process steadily, and one default run crashed inside XLA's compiler late in the suite (a segfault
    in ``backend_compile_and_load`` that does not reproduce when the module runs alone). Modules do
    not share compiled programs, so clearing between modules costs little.
    """
    yield
    jax.clear_caches()
    gc.collect()
