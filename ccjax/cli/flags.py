"""What every command shares: absl flag parsing and config loading where any failure is one line."""

from __future__ import annotations

import sys

from ccjax.errors import UserError


def parse_flags_or_exit(argv: list[str]) -> list[str]:
    """absl flag parsing where any failure (unknown flag, a --config.<field> that does not
    exist, a config file that is missing or broken) is one line on stderr and exit code 2.

    Pass as `app.run(main, flags_parser=parse_flags_or_exit)`.
    """
    from absl import flags

    try:
        return flags.FLAGS(argv)
    except Exception as e:  # absl and ml_collections raise several kinds
        message = " ".join(str(e).split()) or type(e).__name__
        print(f"ccjax: error: {message}; see --helpfull for the flags", file=sys.stderr)
        sys.exit(2)


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
