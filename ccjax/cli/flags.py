"""What every command shares: absl flag parsing and config loading where any failure is one line."""

from __future__ import annotations

import sys

from ccjax.errors import UserError


def parse_flags_or_exit(argv: list[str]) -> list[str]:
    """absl flag parsing where any failure (unknown flag, a --config.<field> that does not
    exist, a config file that is missing or broken) is one line on stderr and exit code 2.

    Pass as `app.run(main, flags_parser=parse_flags_or_exit)`. Third-party INFO logging is
    then off (`--verbosity=0` turns it on).
    """
    from absl import flags

    try:
        rest = flags.FLAGS(argv)
    except Exception as e:  # absl and ml_collections raise several kinds
        message = " ".join(str(e).split()) or type(e).__name__
        print(f"ccjax: error: {message}; see --helpfull for the flags", file=sys.stderr)
        sys.exit(2)
    quiet_third_party_logging()
    return rest


def quiet_third_party_logging() -> None:
    """Warnings and errors only from absl's logging (Orbax logs every save and restore at INFO),
    unless the command line asked for more with absl's --verbosity (e.g. --verbosity=0 for INFO)."""
    import logging

    from absl import flags
    from absl import logging as absl_logging

    if "verbosity" in flags.FLAGS and flags.FLAGS["verbosity"].present:
        return
    absl_logging.set_verbosity(absl_logging.WARNING)
    logging.getLogger("absl").setLevel(logging.WARNING)


def loaded_config(holder):
    """The value of a `config_flags.DEFINE_config_file` flag, or a UserError when the file is
    missing or raised on import (ml_collections defers that error to first use)."""
    import ml_collections

    config = holder.value
    if config is None:
        raise UserError("no config given; pass --config=configs/<file>.py (e.g. configs/cc_digits.py)")
    if not isinstance(config, ml_collections.ConfigDict):
        try:
            config.method  # re-raises the stored loading error
        except Exception as e:
            detail = " ".join(str(e).replace("Configuration is not available because of an earlier failure to load:", "").split())
            raise UserError(f"cannot load the config file: {detail}") from None
    return config
