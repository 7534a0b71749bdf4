"""Scanning a user's image folder: class sub-folders (labelled) or a flat folder (unlabelled).

Layout rules:
- A folder with (non-hidden) sub-folders is labelled: each top-level sub-folder
  is a class, class names are the sorted sub-folder names, and every file
  below a class folder (recursively: RSOD keeps its images in
  `<class>/JPEGImages/`) is a candidate image of that class. Files directly in
  the top folder are skipped ("outside the class folders").
- A folder with only files is unlabelled.
- Hidden files and folders (names starting with '.') are ignored.

Every candidate's header is probed (no pixel decoding): files that are empty,
not images, or decompression-bomb sized are skipped here with a reason; files
that are truncated or corrupt in their pixel data are caught when decoded.
"""

from __future__ import annotations

import collections
import dataclasses
import os

from tqdm import tqdm

from ccjax.data.builder import Plan, config_name
from ccjax.data.images import ImageSkipped, image_size
from ccjax.errors import UserError


@dataclasses.dataclass
class FolderScan:
    """The usable files of a folder, what was skipped, and the size histogram."""

    root: str
    class_names: list[str] | None  # None: a flat (unlabelled) folder
    files: list[tuple[str, int]]  # (path relative to root, label; -1 unlabelled)
    skipped: list[tuple[str, str]]  # (path relative to root, reason)
    sizes: collections.Counter  # (height, width) -> count over `files`

    def most_common_size(self) -> tuple[int, int]:
        """The (height, width) shared by most images (ties: the larger area)."""
        return max(self.sizes.items(), key=lambda kv: (kv[1], kv[0][0] * kv[0][1]))[0]


def _visible(name: str) -> bool:
    return not name.startswith(".")


def _walk_files(top: str) -> list[str]:
    """All non-hidden files below `top`, as sorted absolute paths."""
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if _visible(d))
        out.extend(os.path.join(dirpath, f) for f in filenames if _visible(f))
    return sorted(out)


def scan_folder(root: str, progress: bool = True) -> FolderScan:
    """Lists and probes the images below `root` (see the module docstring for the layout)."""
    root = os.path.abspath(os.path.expanduser(root))
    if not os.path.isdir(root):
        raise UserError(f"image folder {root} does not exist or is not a folder; point "
                        "--config.dataset.name=folder:<path> at the folder that holds your images")
    entries = sorted(e for e in os.listdir(root) if _visible(e))
    subdirs = [e for e in entries if os.path.isdir(os.path.join(root, e))]
    top_files = [e for e in entries if not os.path.isdir(os.path.join(root, e))]

    candidates: list[tuple[str, int]] = []  # (absolute path, label)
    skipped: list[tuple[str, str]] = []
    if subdirs:
        class_names: list[str] | None = subdirs
        for label, name in enumerate(subdirs):
            candidates += [(p, label) for p in _walk_files(os.path.join(root, name))]
        skipped += [(f, "outside the class folders") for f in top_files]
    else:
        class_names = None
        candidates = [(os.path.join(root, f), -1) for f in top_files]

    files, sizes = [], collections.Counter()
    iterator = candidates
    if progress and len(candidates) > 2000:
        iterator = tqdm(candidates, desc=f"scanning {os.path.basename(root)}", unit="file")
    for path, label in iterator:
        rel = os.path.relpath(path, root)
        try:
            sizes[image_size(path)] += 1
        except ImageSkipped as e:
            skipped.append((rel, str(e)))
            continue
        files.append((rel, label))
    if not files:
        raise UserError(
            f"no readable images in {root} ({len(skipped)} files skipped); expected class "
            "sub-folders of images, or a flat folder of images"
        )
    if class_names is not None:
        class_names, files, skipped = _drop_empty_classes(class_names, files, skipped)
    return FolderScan(root, class_names, files, skipped, sizes)


def _drop_empty_classes(class_names, files, skipped):
    """Class folders without a readable image are left out (labels renumbered) and reported as skipped:
    kept, they would add a class, and a cluster, that no image belongs to."""
    used = sorted({label for _, label in files})
    if len(used) == len(class_names):
        return class_names, files, skipped
    new_label = {old: new for new, old in enumerate(used)}
    empty = [name for i, name in enumerate(class_names) if i not in new_label]
    skipped = skipped + [(name + "/", "class folder without a readable image: left out") for name in empty]
    return [class_names[i] for i in used], [(rel, new_label[label]) for rel, label in files], skipped


def descend(root: str) -> str:
    """Follows a chain of lone sub-folders (`AID/AID/...`) down to the folder that holds the classes."""
    root = os.path.abspath(os.path.expanduser(root))
    while os.path.isdir(root):
        entries = [e for e in os.listdir(root) if _visible(e)]
        if len(entries) != 1 or not os.path.isdir(os.path.join(root, entries[0])):
            break
        root = os.path.join(root, entries[0])
    return root


def folder_plan(dataset: str, root: str, image_size: int, *, named: bool,
                expected_classes: int | None = None):
    """The preparation Plan of an image folder (`named`: rsod/siri_whu/aid, else `folder:<root>`).

    image_size > 0 stores every image at image_size x image_size; 0 keeps the
    most common native size and resizes the other images to it.
    """
    if named:
        root = descend(root)
    scan = scan_folder(root)
    if expected_classes is not None:
        found = scan.class_names or []
        if len(found) != expected_classes:
            shown = ", ".join(found[:6]) + (" ..." if len(found) > 6 else "")
            raise UserError(
                f"{dataset} has {expected_classes} classes but {root} has {len(found)} class "
                f"sub-folders ({shown or 'none'}); point --manual_dir at the extracted folder that "
                f"holds the {expected_classes} class folders"
            )
    size = (image_size, image_size) if image_size > 0 else scan.most_common_size()
    name = config_name(dataset, image_size, None if named else root)
    files = scan.files
    return Plan(
        config_name=name,
        description=f"{dataset} from {root}",
        source=root,
        class_names=scan.class_names,
        size=size,
        total=len(files),
        examples=lambda: ((rel, label, os.path.join(root, rel)) for rel, label in files),
        skipped=scan.skipped,
    )
