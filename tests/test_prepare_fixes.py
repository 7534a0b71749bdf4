"""A dataset that is not ready says, in one line, the command that makes it ready, and following it works.

- "not prepared": the message's command (`python -m ccjax prepare ...`, with the config's image size) is
  run as printed, in a fresh process for an image folder, and the call that failed then succeeds;
- an offline download: `prepare --dataset=cifar10` with the network really unreachable (a process in
  its own empty network namespace, `unshare -n`, or, without it, a proxy variable naming a closed local
  port) fails in seconds with one whole line naming the archive's URL and the folder TFDS reads it from
  by hand, and leaves no folder behind.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys

import pytest

from ccjax.cli.prepare import dataset_config
from ccjax.data import open_dataset, prepare_dataset
from ccjax.data.catalog import dataset_spec
from ccjax.errors import UserError
from fakes import shapes_folder
from test_cli import ROOT, env


def printed_command(message: str) -> list[str]:
    """The command between backticks in an error line, split as a shell would."""
    found = re.findall(r"`(python -m ccjax [^`]+)`", message)
    assert len(found) == 1, message
    return shlex.split(found[0])


def test_an_unprepared_folder_names_the_command_with_its_size_and_following_it_works(tmp_path):
    # Catches: the old loop, a command without --image_size that prepares the native size so the same
    # error comes back; the old `-m ccjax.<command>` prepare form; a message that hides the sizes prepared.
    root, data_dir = tmp_path / "my images", tmp_path / "tfds"  # a space: the command must quote it
    shapes_folder(str(root), per_class=2, size=16, labelled=False)
    prepare_dataset(dataset_config(f"folder:{root}", data_dir=str(data_dir)))  # the native size only
    cfg = dataset_config(f"folder:{root}", data_dir=str(data_dir), image_size=12, num_clusters=4)
    with pytest.raises(UserError) as e:
        dataset_spec(cfg)  # what `bench` reads before it builds anything
    message = str(e.value)
    assert "\n" not in message and "(it is prepared at: native)" in message, message
    command = printed_command(message)
    assert command[:4] == ["python", "-m", "ccjax", "prepare"] and "--image_size=12" in command, command
    r = subprocess.run([sys.executable, *command[1:]], cwd=tmp_path, env=env(), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert dataset_spec(cfg)["image_shape"] == (12, 12, 3)
    assert open_dataset(cfg).image_shape == (12, 12, 3)


def test_an_unprepared_catalog_folder_dataset_names_its_size_and_the_command_prepares_it(tmp_path):
    # Catches: a message that drops --image_size (the command would prepare another size than the config's).
    data_dir, extracted = tmp_path / "tfds", tmp_path / "RSOD"
    shapes_folder(str(extracted), per_class=2, size=16)  # four class folders, as RSOD has
    cfg = dataset_config("rsod", data_dir=str(data_dir), image_size=20)
    with pytest.raises(UserError) as e:
        open_dataset(cfg)
    message = str(e.value)
    assert "\n" not in message and "--manual_dir=<extracted folder> --image_size=20`" in message, message
    # Run it as the user would, with the placeholder filled in, through the command's own function.
    command = printed_command(message.replace("<extracted folder>", shlex.quote(str(extracted))))
    flags = dict(a[2:].split("=", 1) for a in command[4:])
    prepare_dataset(dataset_config(flags["dataset"], data_dir=flags["data_dir"], manual_dir=flags["manual_dir"],
                                   image_size=int(flags["image_size"])))
    assert open_dataset(cfg).image_shape == (20, 20, 3)


def offline_prepare(args: list[str], data_dir) -> list[subprocess.Popen]:
    """`python -m ccjax prepare` started with the network unreachable, both ways this machine allows."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: a connection is refused at once
    proxy_env = {**env(), **{k: f"http://127.0.0.1:{port}" for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                                                                        "https_proxy")}}
    proxy_env.pop("NO_PROXY", None), proxy_env.pop("no_proxy", None)
    command = [sys.executable, "-m", "ccjax", "prepare", *args, f"--data_dir={data_dir}"]
    runs = [(command, proxy_env)]
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        runs.append((["unshare", "-n", *command], env()))  # no network at all: no interface but loopback
    return [subprocess.Popen(c, cwd=ROOT, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for c, e in runs]


def test_an_offline_download_fails_in_seconds_in_one_line_saying_how_to_supply_the_archive(tmp_path):
    # Catches: TFDS left to retry for minutes (the timeout), a cause cut mid-string, advice that does not
    # name the URL and the folder, empty cifar10/ or downloads/ folders left behind.
    data_dir = tmp_path / "tfds"
    for p in offline_prepare(["--dataset=cifar10"], data_dir):
        _, stderr = p.communicate(timeout=60)
        lines = [l for l in stderr.splitlines() if l.strip()]
        assert p.returncode == 2 and len(lines) == 1, stderr
        line = lines[0]
        assert line.startswith("ccjax: error: cannot download CIFAR-10") and "cannot reach www.cs.toronto.edu" in line
        assert "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz" in line, line
        assert f"put it in {data_dir}/downloads/manual/" in line and "--manual_dir=" in line, line
        assert line.count("(") == line.count(")"), line  # nothing cut mid-parenthesis
        assert f"`python -m ccjax prepare --dataset=cifar10 --data_dir={data_dir}`" in line, line
        assert not data_dir.exists(), list(data_dir.rglob("*"))


def test_an_archive_at_hand_is_not_downloaded_and_a_failed_download_leaves_no_empty_folder(tmp_path):
    # Catches: a reachability check that refuses although the archive is in manual_dir (following the
    # advice would then not work), and a cleanup that removes a folder holding a file or one that existed.
    from ccjax.data.downloads import archive_at_hand, removing_created_empty_folders

    manual = tmp_path / "downloads" / "manual"
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    assert not archive_at_hand(url, "cifar-10-binary.tar.gz", str(manual), str(tmp_path / "downloads"), None)
    manual.mkdir(parents=True)
    (manual / "cifar-10-binary.tar.gz").write_bytes(b"archive")
    assert archive_at_hand(url, "cifar-10-binary.tar.gz", str(manual), str(tmp_path / "downloads"), None)

    made, kept = tmp_path / "new" / "cifar10", tmp_path / "new" / "downloads"
    with pytest.raises(OSError):
        with removing_created_empty_folders(str(made), str(kept), str(tmp_path / "new"), str(tmp_path)):
            (made / "3.0.2.incomplete").mkdir(parents=True)
            kept.mkdir()
            (kept / "partial.tmp").write_bytes(b"x")
            raise ConnectionError("the download failed")
    assert not made.exists() and (kept / "partial.tmp").exists() and tmp_path.exists()
