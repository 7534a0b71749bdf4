"""Headless Chromium driven over the DevTools protocol on a pipe (no extra Python package).

`--remote-debugging-pipe` makes Chromium read protocol messages from file descriptor 3 and write
them to 4, each a JSON object ended by a NUL byte. The page runs with networking off: every host
name resolves to nothing (--host-resolver-rules) and Network.emulateNetworkConditions says
offline; every request the page makes is recorded (`requests`), so a test can assert that all of
them were local files.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _above(fd: int, low: int) -> int:
    """`fd` moved to a number >= low (the original is closed)."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, low)
    os.close(fd)
    return moved


class Browser:
    """One headless Chromium with one page; use as a context manager."""

    def __init__(self, width: int = 1280, height: int = 1600, timeout: float = 60.0):
        self.width, self.height, self.timeout = width, height, timeout
        self.requests: list[str] = []
        self._next_id, self._buffer, self._events = 0, b"", []

    def __enter__(self) -> "Browser":
        self._profile = tempfile.mkdtemp(prefix="ccjax-chromium-")
        to_child, self._out = os.pipe()
        self._in, from_child = os.pipe()
        to_child, from_child = (_above(fd, 10) for fd in (to_child, from_child))  # never 3 or 4 themselves
        flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
                 f"--user-data-dir={self._profile}", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-extensions",
                 "--host-resolver-rules=MAP * ~NOTFOUND", f"--window-size={self.width},{self.height}", "about:blank"]
        # A small Python puts the protocol's pipes on fds 3 (read) and 4 (write), then execs Chromium:
        # no preexec_fn, so this (multithreaded, JAX-running) process is never forked.
        script = f"import os, sys; os.dup2({to_child}, 3); os.dup2({from_child}, 4); os.execv(sys.argv[1], sys.argv[1:])"
        self._proc = subprocess.Popen([sys.executable, "-c", script, find_chromium(), *flags],
                                      pass_fds=(to_child, from_child), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
        os.close(to_child)
        os.close(from_child)
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for method, params in (("Page.enable", {}), ("Network.enable", {}), ("Runtime.enable", {}),
                               ("Network.emulateNetworkConditions", {"offline": True, "latency": 0,
                                                                      "downloadThroughput": 0,
                                                                      "uploadThroughput": 0}),
                               ("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": self.height,
                                                                       "deviceScaleFactor": 1, "mobile": False})):
            self.call(method, params, session=True)
        return self

    def __exit__(self, *exc) -> None:
        self._proc.kill()
        self._proc.wait()
        os.close(self._out)
        os.close(self._in)
        shutil.rmtree(self._profile, ignore_errors=True)

    # ------------------------------------------------------------------ the protocol

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the protocol pipe (did it crash?)")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _note(self, message: dict) -> None:
        if message.get("method") == "Network.requestWillBeSent":
            self.requests.append(message["params"]["request"]["url"])
        self._events.append(message.get("method"))

    def call(self, method: str, params: dict | None = None, session: bool = False) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self._session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._note(reply)

    def wait_for(self, event: str) -> None:
        deadline = time.monotonic() + self.timeout
        while event not in self._events:
            self._note(self._read_message(deadline))

    # ------------------------------------------------------------------ the page

    def open(self, url: str) -> None:
        self._events.clear()
        self.call("Page.navigate", {"url": url}, session=True)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str, await_promise: bool = False):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": await_promise}, session=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self) -> bytes:
        data = self.call("Page.captureScreenshot", {"format": "png"}, session=True)["data"]
        return base64.b64decode(data)
