"""Benchmark the real train step:

    python -m ccjax bench --config=configs/cc_cifar10.py [--json=bench.json]

(also `ccjax bench` and `python -m ccjax bench`). Compiles the config's train step, runs warm-up
steps, then times `config.bench.steps` steps and prints images/s, step time (median and spread),
peak device memory, FLOPs per step from XLA's cost analysis and the model FLOPs utilisation against
the device's peak. `--config.bench.data=synthetic` (default) feeds uint8 noise of the dataset's
shape, so no download is needed; `--config.bench.data=real` reads the prepared dataset through the
real input pipeline, showing whether the data path keeps up. Either way it also times the input
pipeline alone (host read, sharding, transfer; no step), so the headroom of the data path over the
step is one line, names the bottleneck, and gives the host's peak resident memory (this process,
and the largest grain worker when the dataset is streamed: `--config.dataset.in_memory=false`).
`--config.bench.steps=0` only compiles: FLOPs and XLA's memory estimate, no timing (useful on a CPU
for a config sized for an accelerator). docs/benchmarks.md: what each figure means, and the
measured ones. The library is ccjax/train/benchmark.py.
"""

from __future__ import annotations

import os

from ccjax.cli.flags import CONFIG_OVERRIDE_NOTE, loaded_config, run_command
from ccjax.errors import UserError, exit_on_user_error
from ccjax.run.rundir import write_json_atomic


def _define_flags():
    """The command line's flags, defined only when it runs (importing this module defines none)."""
    from absl import flags
    from ml_collections import config_flags

    return (
        config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/cc_cifar10.py (required).",
                                        lock_config=True),
        flags.DEFINE_string("json", None, "Also write the figures to this JSON file (default: not set, the "
                            "table only)."),
    )


def main() -> None:
    config_flag, json_flag = _define_flags()

    @exit_on_user_error
    def run(argv) -> None:
        if len(argv) > 1:
            raise UserError(f"unexpected arguments {argv[1:]}; flags are --config, --json, --config.<field>=value")
        out = json_flag.value
        if out and not os.path.isdir(os.path.dirname(os.path.abspath(out))):
            raise UserError(f"--json={out}: its folder does not exist; create it or choose another path")
        # imported when the command runs: its --help answers without loading the library
        from ccjax.train.benchmark import benchmark, format_table

        result = benchmark(loaded_config(config_flag))
        print(format_table(result))
        if out:
            write_json_atomic(out, result)
            print(f"ccjax: figures written to {out}")

    run_command(run, __doc__, (config_flag, json_flag), [CONFIG_OVERRIDE_NOTE])


if __name__ == "__main__":
    main()
