"""Compute and cache a dataset's frozen CLIP anchor embeddings (MFAVBs-CC):

    python -m ccjax anchors --config=configs/mfavbs_cifar10.py [--config.anchor.model=...] [--rebuild]
    python -m ccjax anchors --make_tiny_clip=<dir>   # a tiny random CLIP for tests and the digits demo

(also `ccjax anchors` and `python -m ccjax anchors`). The trainer does this itself when the cache is
missing; the cache is in config.anchor.cache_dir (default: the dataset's data_dir, else ~/.cache/ccjax).
"""

from __future__ import annotations

from ccjax.cli.flags import CONFIG_OVERRIDE_NOTE, loaded_config, run_command
from ccjax.errors import UserError, exit_on_user_error


def _define_flags():
    """The command line's flags, defined only when it runs (importing this module defines none)."""
    from absl import flags
    from ml_collections import config_flags

    config = config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/mfavbs_cifar10.py "
                                             "(required unless --make_tiny_clip).",
                                             lock_config=True)
    tiny = flags.DEFINE_string("make_tiny_clip", None, "Save a tiny random CLIP model to this directory and exit "
                               "(default: not set).")
    rebuild = flags.DEFINE_bool("rebuild", False, "Recompute the anchors even when a valid cache exists.")
    return config, tiny, rebuild


def main() -> None:
    config_flag, tiny_flag, rebuild_flag = _define_flags()

    @exit_on_user_error
    def run(argv) -> None:
        if len(argv) > 1:
            raise UserError(f"unexpected arguments {argv[1:]}; flags are --config, --make_tiny_clip, --rebuild")
        # imported when the command runs: its --help answers without loading the library
        from ccjax.clip import cache_paths, dataset_key, load_or_build_anchors, make_tiny_clip

        if tiny_flag.value:
            path = make_tiny_clip(tiny_flag.value)
            print(f"ccjax: saved a tiny random CLIP (a plumbing demo, not a pretrained model) to {path}")
            return
        config = loaded_config(config_flag)
        # imported when the command runs: its --help answers without loading the library
        from ccjax.runtime import distributed

        distributed.maybe_initialize()
        # imported when the command runs: its --help answers without loading the library
        from ccjax.data import open_dataset

        dataset = open_dataset(config.dataset)
        anchors = load_or_build_anchors(config, dataset, rebuild=rebuild_flag.value)
        npz_path, _ = cache_paths(config, dataset)
        norms = (anchors ** 2).sum(axis=1) ** 0.5
        print(f"ccjax: {anchors.shape[0]} anchors x {anchors.shape[1]} dims for {dataset_key(config, dataset)} "
              f"from {config.anchor.model} (norm mean {norms.mean():.3f}) in {npz_path}")

    run_command(run, __doc__, (config_flag, tiny_flag, rebuild_flag), [CONFIG_OVERRIDE_NOTE])


if __name__ == "__main__":
    main()
