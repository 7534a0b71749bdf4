"""Exit 1 unless a `pip freeze` lists exactly the versions a constraints file pins (names normalised).

    python .ci/same_versions.py .ci/constraints-newest.txt <(python -m pip freeze --exclude-editable)

CI installs ccjax into an environment built from the constraints file; any line this prints means
that installing ccjax changed the pinned stack (a range in pyproject.toml that excludes it).
"""

import re
import sys


def pins(path: str) -> dict[str, str]:
    out = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if "==" in line:
                name, version = line.split("==", 1)
                out[re.sub(r"[-_.]+", "-", name.strip()).lower()] = version.strip()
    return out


def main() -> None:
    want, have = pins(sys.argv[1]), pins(sys.argv[2])
    diff = [f"{name}: pinned {want.get(name)}, installed {have.get(name)}"
            for name in sorted(set(want) | set(have)) if want.get(name) != have.get(name)]
    for line in diff:
        print(f"ci: installing ccjax changed the {sys.argv[1]} stack: {line}")
    sys.exit(1 if diff else 0)


if __name__ == "__main__":
    main()
