"""Train and evaluate: `python -m ccjax.main --config=configs/cc_digits.py [--workdir=...]`.

`--config.<field>=value` overrides any config field. The workdir defaults to
./runs/<config file name>; a run resumes from its newest checkpoint there.
"""

from __future__ import annotations

import os

from absl import app, flags
from ml_collections import config_flags

from ccjax.cli.flags import loaded_config, parse_flags_or_exit
from ccjax.errors import UserError, exit_on_user_error

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/cc_digits.py.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (default: ./runs/<config name>).")
_STOP_AT_EPOCH = flags.DEFINE_integer(
    "stop_at_epoch", None, "Save and stop after this epoch (e.g. to fit a job's time limit); rerun to resume."
)


def default_workdir(config_path: str) -> str:
    name = os.path.splitext(os.path.basename(config_path.split(":")[0]))[0]
    return os.path.join("runs", name)


@exit_on_user_error
def run(argv) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; flags are --config, --workdir, --config.<field>=value")
    config = loaded_config(_CONFIG)
    from ccjax.runtime import distributed

    distributed.maybe_initialize()
    from ccjax.train import train_and_evaluate

    workdir = _WORKDIR.value or default_workdir(flags.FLAGS["config"].config_filename)
    train_and_evaluate(config, workdir, stop_at_epoch=_STOP_AT_EPOCH.value)


def main() -> None:
    app.run(run, flags_parser=parse_flags_or_exit)


if __name__ == "__main__":
    main()
