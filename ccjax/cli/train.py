"""Train and evaluate a config:

    python -m ccjax train --config=configs/cc_digits.py [--workdir=runs/cc_digits] [--config.<field>=value ...]

(also `ccjax train ...`, `ccjax-train ...` and `python -m ccjax train ...`). The workdir defaults to
./runs/<config file name>; a run resumes from its newest checkpoint there, and at the end the run is
evaluated and its report written to <workdir>/report/.
"""

from __future__ import annotations

import os

from ccjax.cli.flags import CONFIG_FIELDS_NOTE, CONFIG_OVERRIDE_NOTE, loaded_config, run_command
from ccjax.errors import UserError, exit_on_user_error


def _define_flags():
    """The command line's flags, defined only when it runs (importing this module defines none)."""
    from absl import flags
    from ml_collections import config_flags

    return (
        config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/cc_digits.py (required).",
                                        lock_config=True),
        flags.DEFINE_string("workdir", None, "Run directory (default: ./runs/<config file name>)."),
        flags.DEFINE_integer("stop_at_epoch", None, "Save and stop after this epoch (e.g. to fit a job's time "
                             "limit); rerun the same command to resume (default: not set, train all "
                             "config.num_epochs)."),
        flags.DEFINE_bool("show_config", False, "Print the resolved config (with --config.<field> overrides) "
                          "and exit without training."),
    )


def default_workdir(config_path: str) -> str:
    """./runs/<config file name without .py>."""
    name = os.path.splitext(os.path.basename(config_path.split(":")[0]))[0]
    return os.path.join("runs", name)


def config_listing(config) -> str:
    """One `field = value` line per config field, in the dotted form --config.<field> takes."""
    # imported when the command runs: its --help answers without loading the library
    from ccjax.run.rundir import flatten

    lines = [f"{k} = {v!r}" for k, v in flatten(config.to_dict()).items()]
    return "\n".join(["# override any of these with --config.<field>=value; each is documented in ccjax/config.py",
                      *lines])


def main() -> None:
    config_flag, workdir_flag, stop_flag, show_flag = _define_flags()

    @exit_on_user_error
    def run(argv) -> None:
        if len(argv) > 1:
            raise UserError(f"unexpected arguments {argv[1:]}; flags are --config, --workdir, --stop_at_epoch, "
                            "--show_config, --config.<field>=value")
        config = loaded_config(config_flag)
        if show_flag.value:
            print(config_listing(config))
            return
        from absl import flags

        # imported when the command runs: its --help answers without loading the library
        from ccjax.runtime import distributed

        distributed.maybe_initialize()
        # imported when the command runs: its --help answers without loading the library
        from ccjax.train import train_and_evaluate

        workdir = workdir_flag.value or default_workdir(flags.FLAGS["config"].config_filename)
        train_and_evaluate(config, workdir, stop_at_epoch=stop_flag.value)

    run_command(run, __doc__, (config_flag, workdir_flag, stop_flag, show_flag),
                [CONFIG_OVERRIDE_NOTE, CONFIG_FIELDS_NOTE])


if __name__ == "__main__":
    main()
