"""Test set-up: 4 fake CPU devices, so sharding is exercised on every test run.

The device count must be fixed before JAX initialises its backend, hence here.
"""
import os

os.environ.setdefault("JAX_NUM_CPU_DEVICES", "4")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The tests' models are tiny, so XLA's optimisation passes cost far more than they save: compiling
# without them makes the suite about twice as fast (docs/testing.md). Subprocesses inherit it. Training,
# the benchmarks and the quick start outside the tests compile fully optimised.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
