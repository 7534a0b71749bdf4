"""What every command shares: its `--help`, absl flag parsing and config loading where any failure is one line."""

from __future__ import annotations

import difflib
import glob
import os
import re
import sys
import textwrap
from typing import Callable, Sequence

from ccjax.cli.closed_pipe import quiet_when_stdout_closes
from ccjax.errors import UserError

HELP_ARGS = ("--help", "-help", "-h", "--helpshort", "-helpshort", "-?")
FULL_HELP_ARGS = ("--helpfull", "-helpfull")
# What a flag's value looks like in --help, where its type alone says little.
METAVARS = {"workdir": "DIR", "out": "FILE", "json": "FILE", "image": "FILE", "make_tiny_clip": "DIR",
            "data_dir": "DIR", "manual_dir": "DIR", "dataset": "NAME", "suggest_k": "LO:HI"}
CONFIG_OVERRIDE_NOTE = ("--config.<field>=value overrides any config field, e.g. --config.num_epochs=20 "
                        "--config.batch_size=128; `ccjax train --config=<file> --show_config` lists them.")
CONFIG_FIELDS_NOTE = ("Config fields: each is documented beside its default in ccjax/config.py (get_base_config); "
                      "a config file changes only what its paper changes. --config=<file> --show_config prints "
                      "every field of that config (with your overrides) and exits.")


def run_command(run: Callable, doc: str, own_flags: Sequence, notes: Sequence[str] = ()) -> None:
    """`app.run(run)` for a command whose `--help` is `doc` and `own_flags` (absl FlagHolders), each
    with its description and default, then `notes` and a pointer to `--helpfull`; exit 0."""
    from absl import app

    def parser(argv: list[str]) -> list[str]:
        args = argv[1:argv.index("--")] if "--" in argv else argv[1:]
        if any(a in HELP_ARGS for a in args) or any(a in FULL_HELP_ARGS for a in args):
            print(command_help(doc, own_flags, notes))
            if any(a in FULL_HELP_ARGS for a in args):
                from absl import flags

                print("\nAll flags, including absl's, JAX's and TFDS's own:\n" + flags.FLAGS.get_help())
            sys.exit(0)
        return parse_flags_or_exit(argv)

    with quiet_when_stdout_closes():  # `--help | head -1` (also through the kept python -m ccjax.main ...): no traceback
        app.run(run, flags_parser=parser)


def command_help(doc: str, own_flags: Sequence, notes: Sequence[str] = ()) -> str:
    """The text `--help` prints: the command's docstring, its flags (name, description, default), notes."""
    from absl import flags

    lines = [textwrap.dedent(doc).strip(), "", "Flags:"]
    for holder in own_flags:
        lines += flag_help(flags.FLAGS[holder.name])
    for note in [*notes, "Third-party libraries' warnings are off: --verbosity=-1 shows them, --verbosity=0 "
                 "their INFO logs too. --helpfull lists absl's, JAX's and TFDS's own flags as well."]:
        lines += ["", *textwrap.wrap(note, 100)]
    return "\n".join(lines)


def flag_help(flag) -> list[str]:
    """`  --name=VALUE` and its description with the default, wrapped to 100 columns."""
    kind = flag.flag_type()
    if flag.boolean:
        name = f"--[no]{flag.name}"
    else:
        by_type = {"int": "N", "float": "X", "config object": "FILE"}.get(kind, "TEXT")
        name = f"--{flag.name}=" + METAVARS.get(flag.name, by_type)
    text = " ".join(flag.help.split())
    if flag.default is not None:
        default = (str(flag.default).lower() if flag.boolean else repr(flag.default) if kind == "string"
                   else flag.default)
        text += f" (default: {default})"
    elif "default" not in text and "required" not in text:
        text += " (default: not set)"
    head = f"  {name}  "
    if len(head) > 26:  # a long name gets its own line
        return [head.rstrip(), *textwrap.wrap(text, 100, initial_indent=" " * 26, subsequent_indent=" " * 26)]
    return textwrap.wrap(text, 100, initial_indent=head.ljust(26), subsequent_indent=" " * 26)


def parse_flags_or_exit(argv: list[str]) -> list[str]:
    """absl flag parsing where any failure (unknown flag, a --config.<field> that does not
    exist, a config file that is missing or broken) is one line on stderr and exit code 2.

    Pass as `app.run(main, flags_parser=parse_flags_or_exit)` (run_command does). Third-party
    logging is then off below errors (see quiet_third_party_logging).
    """
    from absl import flags

    try:
        rest = flags.FLAGS(argv)
    except Exception as e:  # absl and ml_collections raise several kinds
        print(f"ccjax: error: {flag_error_message(e, argv)}", file=sys.stderr)
        sys.exit(2)
    quiet_third_party_logging()
    return rest


def flag_error_message(error: Exception, argv: list[str]) -> str:
    """One line for a failure to parse the command line: a missing config file names the nearest
    existing ones, a misspelt --config.<field> the nearest field, anything else points to --help."""
    path = config_path(argv)
    if path and "Failed loading config file" in str(error):
        return config_file_message(path, str(error))
    key_error = error if isinstance(error, KeyError) else error.args[0] if error.args else None
    if isinstance(key_error, KeyError):  # ml_collections: "'key'\nDid you mean "near" instead of "key"?"
        return config_field_message(str(key_error.args[0]) if key_error.args else "", argv)
    message = " ".join(str(error).split())
    if message.startswith("flag --config."):
        return message + " (`--show_config` shows every field's current value)"
    return message + "; `--help` lists this command's flags"


def config_path(argv: list[str]) -> str | None:
    """The file of --config=FILE (or --config FILE) in argv, without a `:argument` suffix."""
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            return arg.split("=", 1)[1].split(":")[0]
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1].split(":")[0]
    return None


def config_file_message(path: str, detail: str) -> str:
    """A config file that does not exist: the nearest existing ones; else the loading error, one line."""
    if os.path.isfile(path):
        detail = " ".join(detail.replace("Configuration is not available because of an earlier failure to load:",
                                         "").split())
        return f"cannot load the config file {path}: {detail}"
    # Where to look: the folder named (or the current one), ./configs, the configs beside this checkout.
    folders = [os.path.dirname(path) or ".", "configs", os.path.join(os.path.dirname(__file__), "..", "..", "configs")]
    candidates: dict[str, str] = {}  # file name -> path, the first folder's first
    for folder in folders:
        for f in sorted(glob.glob(os.path.join(folder, "*.py"))):
            candidates.setdefault(os.path.basename(f), os.path.normpath(f))
    near = [candidates[n] for n in difflib.get_close_matches(os.path.basename(path), candidates, n=3)]
    if near:
        also = f" (or {', '.join(near[1:])})" if len(near) > 1 else ""
        return f"no config file {path}; did you mean {near[0]}{also}?"
    configs = next((os.path.normpath(f) for f in folders[1:] if glob.glob(os.path.join(f, "*.py"))), None)
    if configs:
        return f"no config file {path}; the configs are {configs}/*.py, e.g. {configs}/cc_digits.py"
    return f"no config file {path}; pass --config=<a config file>, e.g. configs/cc_digits.py in the ccjax folder"


def config_field_message(key_text: str, argv: list[str]) -> str:
    """A --config.<field> override that names no field: the argument, and the nearest field if any."""
    key = key_text.splitlines()[0].strip("'\"") if key_text else "?"
    near = re.search(r'Did you mean "([^"]+)"', key_text)
    arg = next((a.split("=", 1)[0] for a in argv if a.startswith("--config.") and
                key in a.split("=", 1)[0].split(".")), None)
    name = arg or f"--config...{key}"
    message = f"{name}: the config has no field {key!r}"
    if near and arg:
        parts = arg.split(".")
        parts[parts.index(key)] = near.group(1)
        message += f"; did you mean {'.'.join(parts)}?"
    elif near:
        message += f"; did you mean {near.group(1)!r}?"
    return message + " (`ccjax train --config=<file> --show_config` lists every field)"


def quiet_third_party_logging() -> None:
    """Errors only from the libraries' absl logging (TFDS's warnings before ccjax's own one-line
    errors, Orbax's INFO on every save) and no transformers Flax deprecation notice, unless the
    command line asks with absl's --verbosity (-1: their warnings, 0: also INFO). ccjax's own
    warnings are printed lines and stay."""
    import logging

    from absl import flags
    from absl import logging as absl_logging

    if "verbosity" in flags.FLAGS and flags.FLAGS["verbosity"].present:
        return
    absl_logging.set_verbosity(absl_logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    for name in TRANSFORMERS_DEPRECATION_LOGGERS:  # the loggers that print it; filters act per logger
        logging.getLogger(name).addFilter(_drop_transformers_deprecation)


# transformers 4.x prints "TensorFlow and JAX classes are deprecated ..." once from each of these.
TRANSFORMERS_DEPRECATION_LOGGERS = ("transformers.modeling_flax_utils", "transformers.feature_extraction_utils",
                                    "transformers.tokenization_utils_base", "transformers.image_processing_base")


def _drop_transformers_deprecation(record) -> bool:
    return "TensorFlow and JAX classes are deprecated" not in record.getMessage()


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
            from absl import flags

            path = flags.FLAGS[holder.name].config_filename.split(":")[0]
            raise UserError(config_file_message(path, str(e))) from None
    return config
