"""Before a TFDS download: is the archive already at hand, and if not, can its server be reached?

TFDS retries a download it cannot make for minutes ("Dl Completed 0%") and then
fails with a message cut mid-sentence, leaving empty folders behind. Here the
server (or the proxy the environment names) is tried first with one short
connection, and a machine without the network gets, in seconds, one line
saying which file to download by hand and where TFDS reads it from (its
manual_dir: <data_dir>/downloads/manual, or --manual_dir). A download that
fails anyway removes the folders it created while they hold no file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import urllib.parse
import urllib.request

CONNECT_TIMEOUT_S = 5.0


def archive_at_hand(url: str, filename: str, manual_dir: str, download_dir: str, checksum: str | None) -> bool:
    """True when TFDS will not download `url`: the file is in `manual_dir` under the name TFDS expects,
    or TFDS's cache in `download_dir` has it from an earlier download."""
    if os.path.isfile(os.path.join(manual_dir, filename)):
        return True
    try:  # TFDS's name for a cached download (url + checksum); not a public API, so a failure is "not cached"
        from tensorflow_datasets.core.download.resource import get_dl_fname

        return os.path.isfile(os.path.join(download_dir, get_dl_fname(url, checksum)))
    except Exception:  # noqa: BLE001
        return False


def unreachable(url: str, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """None when a TCP connection to `url`'s server (or to the proxy the environment sets for it) opens
    within `timeout` seconds, else why not: 'cannot reach www.example.org (its name does not resolve)'."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    proxy = None if urllib.request.proxy_bypass(host) else urllib.request.getproxies().get(parts.scheme)
    target, target_port, via = host, port, ""
    if proxy:
        p = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        target, target_port, via = p.hostname or "", p.port or 80, f" through the proxy {proxy}"
    try:
        socket.create_connection((target, target_port), timeout=timeout).close()
        return None
    except socket.gaierror:
        why = f"the name {target} does not resolve"
    except (socket.timeout, TimeoutError):
        why = f"no answer from {target}:{target_port} in {timeout:g} s"
    except OSError as e:
        why = (e.strerror or type(e).__name__).lower()
    return f"cannot reach {host}{via} ({why})"


def manual_download_advice(urls: list[tuple[str, str]], manual_dir: str, retry: str) -> str:
    """'download URL by hand (on a machine with the network), put it in MANUAL_DIR as NAME, then run RETRY'."""
    files = " and ".join(url if url.rsplit("/", 1)[-1] == name else f"{url} (saved as {name})" for url, name in urls)
    return (f"download {files} by hand on a machine with the network, put it in {manual_dir}/ (TFDS's "
            f"manual_dir; --manual_dir=<folder> names another), then run `{retry}`")


@contextlib.contextmanager
def removing_created_empty_folders(*folders: str):
    """On an exception, removes each of `folders` that did not exist before and holds no file (only
    empty folders, if any): a failed download leaves no empty cifar10/ or downloads/ behind."""
    new = [f for f in folders if not os.path.exists(f)]
    try:
        yield
    except BaseException:
        for folder in sorted(new, key=len, reverse=True):  # the deepest first
            if os.path.isdir(folder) and not any(files for _, _, files in os.walk(folder)):
                shutil.rmtree(folder, ignore_errors=True)
        raise
