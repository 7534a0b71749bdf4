"""ImageNet subsets (ImageNet-10, ImageNet-Dogs, SCAN's ImageNet-50/100/200) from a manual download.

The class lists (WordNet ids) of ImageNet-10 and ImageNet-Dogs ship in
`ccjax/data/resources/` (see the comments there for their source). SCAN's
lists for ImageNet-50/100/200 (Van Gansbeke et al., ECCV 2020) are not
shipped yet (files taken from another repository cannot be committed where
ccjax is built): the user saves SCAN's `imagenet_<k>.txt` (one `<wnid> <class
name>` per line, `data/imagenet_subsets/` of
github.com/wvangansbeke/Unsupervised-Classification) into the manual
directory, and the error says so. Once they are added to
`ccjax/data/resources/` under the same names, they are used from there. ImageNet cannot be downloaded automatically;
the user puts their copy in a manual directory (`--manual_dir`, or TFDS's
default `<data_dir>/downloads/manual`) in any of the layouts it comes in:

- `ILSVRC2012_img_train.tar`: the official archive (a tar of one tar per
  wnid), the file TFDS's own `imagenet2012` builder expects there;
- `<wnid>.tar`: that archive unpacked once;
- `<wnid>/*.JPEG` (or `train/<wnid>/*.JPEG`): fully extracted, e.g. the
  layout torchvision's ImageFolder reads.

Whatever the layout, the prepared dataset is the same: classes in list order,
each class's files sorted by name, example ids `<wnid>/<file name>`.
"""

from __future__ import annotations

import importlib.resources
import os
import tarfile
from typing import Iterator

from ccjax.data.builder import Plan, config_name
from ccjax.errors import UserError

SUBSETS = {"imagenet10": "imagenet10.txt", "imagenet_dogs": "imagenet_dogs.txt"}  # shipped
SCAN_SUBSETS = {"imagenet50": 50, "imagenet100": 100, "imagenet200": 200}  # the user's copy of SCAN's list
SCAN_LISTS = "https://github.com/wvangansbeke/Unsupervised-Classification/tree/master/data/imagenet_subsets"
TRAIN_TAR = "ILSVRC2012_img_train.tar"
DOWNLOAD_URL = "https://image-net.org/download-images.php"


def scan_list_file(name: str) -> str:
    """SCAN's file name for subset `name` (imagenet100 -> imagenet_100.txt)."""
    return f"imagenet_{SCAN_SUBSETS[name]}.txt"


def find_scan_list(name: str, manual_dir: str | None) -> str:
    """The path of SCAN's class list for `name`: shipped in ccjax/data/resources/ if a maintainer has
    added it there, else the user's copy in `manual_dir` (or its imagenet_subsets/); a UserError if absent."""
    fname = scan_list_file(name)
    shipped = importlib.resources.files("ccjax.data").joinpath("resources", fname)
    if shipped.is_file():
        return str(shipped)
    for folder in ([manual_dir, os.path.join(manual_dir, "imagenet_subsets")] if manual_dir else []):
        if os.path.isfile(os.path.join(folder, fname)):
            return os.path.join(folder, fname)
    where = os.path.join(manual_dir, fname) if manual_dir else f"<manual_dir>/{fname}"
    raise UserError(f"{name} is SCAN's {SCAN_SUBSETS[name]}-class ImageNet subset; ccjax does not ship its class "
                    f"list: save {fname} from {SCAN_LISTS} as {where}, then re-run")


def parse_class_list(text: str) -> list[tuple[str, str]]:
    """[(wnid, class name)] from `<wnid><tab or space><name>` lines ('#' lines are comments)."""
    rows = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        wnid, _, label = line.strip().replace("\t", " ").partition(" ")
        if not (wnid.startswith("n") and wnid[1:].isdigit()):
            raise UserError(f"class list line {line.strip()!r} does not start with a WordNet id (n01234567)")
        rows.append((wnid, label.strip() or wnid))
    return rows


def subset_classes(name: str, manual_dir: str | None = None) -> list[tuple[str, str]]:
    """[(wnid, class name)] of an ImageNet subset, in label order (SCAN's subsets: read from manual_dir)."""
    if name in SCAN_SUBSETS:
        path = find_scan_list(name, manual_dir)
        rows = parse_class_list(open(path).read())
        if len(rows) != SCAN_SUBSETS[name] or len({w for w, _ in rows}) != len(rows):
            raise UserError(f"{path} lists {len(rows)} classes ({len({w for w, _ in rows})} distinct), not "
                            f"{SCAN_SUBSETS[name]}; save SCAN's {scan_list_file(name)} from {SCAN_LISTS} again")
        names = [label for _, label in rows]  # class names must be unique (ImageNet has two 'crane's)
        return [(w, label if names.count(label) == 1 else f"{label} ({w})") for w, label in rows]
    text = importlib.resources.files("ccjax.data").joinpath("resources", SUBSETS[name]).read_text()
    return parse_class_list(text)


def _locate(manual_dir: str, wnids: list[str]) -> dict[str, tuple[str, str]]:
    """wnid -> (kind, path) with kind 'dir', 'tar' or 'outer' (a member of ILSVRC2012_img_train.tar)."""
    found: dict[str, tuple[str, str]] = {}
    for wnid in wnids:
        for base in (manual_dir, os.path.join(manual_dir, "train")):
            if os.path.isdir(os.path.join(base, wnid)):
                found[wnid] = ("dir", os.path.join(base, wnid))
                break
            if os.path.isfile(os.path.join(base, wnid + ".tar")):
                found[wnid] = ("tar", os.path.join(base, wnid + ".tar"))
                break
    outer = os.path.join(manual_dir, TRAIN_TAR)
    missing = [w for w in wnids if w not in found]
    if missing and os.path.isfile(outer):
        try:
            with tarfile.open(outer, "r:") as tar:
                names = set(tar.getnames())
        except (tarfile.TarError, OSError) as e:
            raise UserError(f"cannot read {outer} ({e}); re-download it from {DOWNLOAD_URL}") from None
        for w in missing:
            if w + ".tar" in names:
                found[w] = ("outer", outer)
    return found


def check_manual_dir(name: str, manual_dir: str | None, image_size: int = 0) -> dict[str, tuple[str, str]]:
    """Where each class of subset `name` is in `manual_dir`; a UserError naming what is missing."""
    prepare = (f"python -m ccjax prepare --dataset={name} --manual_dir=<folder>"
               + (f" --image_size={image_size}" if image_size else ""))
    if not manual_dir or not os.path.isdir(manual_dir):
        where = f"{manual_dir} does not exist" if manual_dir else "no manual_dir given"
        raise UserError(
            f"{name} is built from your ImageNet-2012 train set ({where}): download "
            f"{TRAIN_TAR} from {DOWNLOAD_URL}, put it (or its extracted <wnid>/ folders) in a "
            f"folder and run `{prepare}`"
        )
    wnids = [w for w, _ in subset_classes(name, manual_dir)]
    found = _locate(manual_dir, wnids)
    missing = [w for w in wnids if w not in found]
    if missing:
        shown = ", ".join(missing[:4]) + (" ..." if len(missing) > 4 else "")
        raise UserError(
            f"{name}: {len(missing)} of its {len(wnids)} ImageNet classes are not in {manual_dir} "
            f"({shown}); it needs {TRAIN_TAR}, <wnid>.tar files or <wnid>/ folders of the "
            f"ImageNet-2012 train set ({DOWNLOAD_URL})"
        )
    return found


def _tar_files(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    return sorted((m for m in tar.getmembers() if m.isfile() and not os.path.basename(m.name).startswith(".")),
                  key=lambda m: os.path.basename(m.name))


def count_images(found: dict[str, tuple[str, str]]) -> int:
    """The number of candidate files over all classes (headers only; for the progress bar)."""
    total = 0
    for wnid, (kind, path) in found.items():
        for _, _ in _members(wnid, kind, path, read=False):
            total += 1
    return total


def _members(wnid: str, kind: str, path: str, read: bool = True) -> Iterator[tuple[str, bytes | None]]:
    """(file name, bytes or None) of one class, sorted by file name."""
    if kind == "dir":
        for f in sorted(f for f in os.listdir(path) if not f.startswith(".")):
            full = os.path.join(path, f)
            if os.path.isfile(full):
                yield f, (_read_file(full) if read else None)
        return
    with tarfile.open(path, "r:") as tar:
        if kind == "outer":
            inner_file = tar.extractfile(tar.getmember(wnid + ".tar"))
            with tarfile.open(fileobj=inner_file, mode="r:") as inner:
                yield from _tar_members(inner, read)
        else:
            yield from _tar_members(tar, read)


def _tar_members(tar: tarfile.TarFile, read: bool) -> Iterator[tuple[str, bytes | None]]:
    for m in _tar_files(tar):
        data = None
        if read:
            try:
                data = tar.extractfile(m).read()
            except (tarfile.TarError, OSError):
                data = b""  # reported as an empty/unreadable file by the decoder
        yield os.path.basename(m.name), data


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def iter_subset(classes: list[tuple[str, str]], found: dict[str, tuple[str, str]]) -> Iterator[tuple[str, int, bytes]]:
    """(example id '<wnid>/<file>', label, encoded bytes) over the subset's `classes`, in canonical order."""
    for label, (wnid, _) in enumerate(classes):
        kind, path = found[wnid]
        for fname, data in _members(wnid, kind, path):
            yield f"{wnid}/{fname}", label, data


DEFAULT_SIZE = 224  # the papers resize ImageNet subsets to 224x224


def imagenet_plan(name: str, manual_dir: str | None, image_size: int):
    """The preparation Plan of ImageNet subset `name` from `manual_dir` (image_size 0 -> 224)."""
    found = check_manual_dir(name, manual_dir, image_size)
    classes = subset_classes(name, manual_dir)
    size = image_size if image_size > 0 else DEFAULT_SIZE
    return Plan(
        config_name=config_name(name, size),
        description=f"{name}: ImageNet-2012 train subset from {manual_dir}",
        source=os.path.abspath(manual_dir),
        class_names=[label for _, label in classes],
        size=(size, size),
        total=count_images(found),
        examples=lambda: iter_subset(classes, found),
    )
