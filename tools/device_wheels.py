"""The Python 3.12 wheels a GPU machine needs beside its own jax stack to run ccjax and tools/device_check.py.

    python tools/device_wheels.py --dest=.whl [--have=target_pip_list.txt]

For a machine that cannot reach a package index and whose image already has jax (CUDA), flax,
optax, orbax-checkpoint and transformers 5: walks ccjax's requirements (pyproject.toml's
dependencies and its `clip` extra: transformers 4.x, since 5 has no Flax CLIP) through the
newest-stack pins (.ci/constraints-newest.txt), skipping what the machine already has, and
downloads each remaining package at its pinned version as a cp312 manylinux x86-64 wheel (a
pure-Python package published only as a source archive is built into a wheel here). Then prints
the size and the command that installs them there:

    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD

`--have` lists what the machine has (`python3 -m pip list --format=freeze` run there; names, with
or without ==versions). Without it, the machine is assumed to have HAVE below. A package it has
at a version that does not satisfy a requirement (transformers 5 for `transformers<5`) is carried.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile
import tomllib
import zipfile

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What a JAX CUDA image brings: the jax stack and the usual scientific Python with its helpers.
HAVE = """jax jaxlib jax-cuda12-plugin jax-cuda12-pjrt jax-cuda13-plugin jax-cuda13-pjrt flax optax
orbax-checkpoint chex ml-dtypes opt-einsum tensorstore msgpack treescope absl-py etils numpy scipy
scikit-learn matplotlib pillow pyarrow protobuf requests pyyaml tqdm psutil typing-extensions rich
packaging filelock fsspec safetensors regex joblib threadpoolctl narwhals humanize simplejson
aiofiles uvloop prometheus-client cloudpickle wrapt attrs six zipp""".split()
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64"]
# The target's marker environment: CPython 3.12 on Linux x86-64.
TARGET = {**default_environment(), "python_version": "3.12", "python_full_version": "3.12.3",
          "implementation_name": "cpython", "platform_python_implementation": "CPython", "sys_platform": "linux",
          "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix"}


def canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: str) -> dict[str, str]:
    """{canonical name: version} from a constraints or `pip freeze` file (== lines; bare names: "")."""
    pins = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                name, _, version = line.partition("==")
                pins[canon(name)] = version.strip()
    return pins


def project_requirements() -> list[Requirement]:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["clip"]]


def applies(req: Requirement, extras: set[str]) -> bool:
    """Whether `req` is needed on the target, given the extras asked of its parent."""
    if req.marker is None:
        return True
    return any(req.marker.evaluate({**TARGET, "extra": e}) for e in (extras or {""}))


def wheel_requirements(path: str) -> list[Requirement]:
    """Requires-Dist of a wheel's METADATA."""
    with zipfile.ZipFile(path) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(meta).decode()
    return [Requirement(line.split(":", 1)[1].strip()) for line in text.splitlines()
            if line.startswith("Requires-Dist:")]


def satisfied(req: Requirement, have: dict[str, str]) -> bool:
    """The target has `req`'s package at a version it accepts (any version when only the name is known)."""
    version = have.get(canon(req.name))
    if version is None:
        return False
    return version == "" or req.specifier.contains(Version(version), prereleases=True)


def download_cmd(specs: list[str], dest: str) -> list[str]:
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
           "3.12", "--implementation", "cp", "-d", dest, *specs]
    for p in PLATFORMS:
        cmd += ["--platform", p]
    return cmd


def wheel_of(name: str, dest: str) -> str | None:
    found = [p for p in glob.glob(os.path.join(dest, "*.whl")) if canon(os.path.basename(p).split("-")[0]) == canon(name)]
    return found[0] if found else None


def fetch(specs: dict[str, str], dest: str) -> dict[str, str]:
    """Downloads each name==version as a cp312 manylinux wheel (or builds a pure-Python one): {name: path}.

    One pip call for all of them; one per package only when that fails (a package with no wheel)."""
    missing = {n: v for n, v in specs.items() if wheel_of(n, dest) is None}
    if missing and subprocess.run(download_cmd([f"{n}=={v}" for n, v in missing.items()], dest),
                                  capture_output=True, text=True).returncode != 0:
        for n, v in missing.items():
            if wheel_of(n, dest) is None and subprocess.run(download_cmd([f"{n}=={v}"], dest),
                                                            capture_output=True, text=True).returncode != 0:
                build_pure_wheel(n, v, dest)
    return {n: wheel_of(n, dest) for n in specs}


def build_pure_wheel(name: str, version: str, dest: str) -> None:
    """A package published only as a source archive: fine if it builds a py3-none-any wheel."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp, f"{name}=={version}"],
                       check=True, capture_output=True, text=True)
        built = glob.glob(os.path.join(tmp, "*.whl"))
        if len(built) != 1 or not built[0].endswith("-py3-none-any.whl"):
            sys.exit(f"device_wheels: {name}=={version} has no cp312 manylinux wheel and is not pure Python")
        os.replace(built[0], os.path.join(dest, os.path.basename(built[0])))


def closure(pins: dict[str, str], have: dict[str, str], dest: str) -> list[str]:
    """Downloads every package ccjax needs that the target lacks, level by level through each wheel's requirements."""
    level = [(r, set()) for r in project_requirements()]
    seen, wheels = set(), []
    while level:
        wanted = {}
        for req, extras in level:
            name = canon(req.name)
            if not applies(req, extras) or satisfied(req, have) or name in seen:
                continue
            if name not in pins:
                sys.exit(f"device_wheels: {req} is not pinned in .ci/constraints-newest.txt; regenerate it")
            if not req.specifier.contains(Version(pins[name]), prereleases=True):
                sys.exit(f"device_wheels: the pin {name}=={pins[name]} does not satisfy {req}")
            seen.add(name)
            wanted[name] = (pins[name], set(req.extras))
        paths = fetch({n: v for n, (v, _) in wanted.items()}, dest)
        level = []
        for name, path in paths.items():
            wheels.append(path)
            print(f"  {os.path.basename(path)}  ({os.path.getsize(path) / 2**20:.1f} MiB)", flush=True)
            level += [(r, wanted[name][1]) for r in wheel_requirements(path)]
    return wheels


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dest", default=".whl", help="folder for the wheels")
    p.add_argument("--have", default=None, help="`pip list --format=freeze` of the target (default: HAVE)")
    p.add_argument("--pins", default=os.path.join(ROOT, ".ci", "constraints-newest.txt"))
    a = p.parse_args()
    have = read_pins(a.have) if a.have else {canon(n): "" for n in HAVE}
    os.makedirs(a.dest, exist_ok=True)
    print(f"device_wheels: what ccjax needs beyond the target's {len(have)} packages, into {a.dest}:")
    wheels = closure(read_pins(a.pins), have, a.dest)
    size = sum(os.path.getsize(w) for w in wheels) / 2**20
    print(f"device_wheels: {len(wheels)} wheels, {size:.1f} MiB. On the target:\n"
          f"  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site {a.dest}/*.whl\n"
          f"  export PYTHONPATH=/tmp/site:$PWD")


if __name__ == "__main__":
    main()
