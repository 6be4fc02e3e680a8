"""The user's galleries for the retrieval tab: the images they uploaded, or a folder on the server.

A server folder is searched only inside the operator's gallery root ($FUSELIP_GALLERY_ROOT), so a visitor can never
read the rest of the disk; its images are read again only when a file in it changed.
"""
from __future__ import annotations

import threading
from pathlib import Path

from fuselip.data.files import IMAGE_EXTENSIONS, DataFileError, read_folder
from fuselip.data.types import Side
from fuselip.demo.config import GALLERY_ROOT_ENV
from fuselip.demo.errors import DemoError
from fuselip.demo.inputs import read_image

_FOLDERS: dict[Path, tuple[tuple, list[Side]]] = {}
_FOLDERS_LOCK = threading.Lock()


def upload_gallery(files, image_size: int, limit: int) -> tuple[list[Side], list[str]]:
    """The images a user uploaded (file payloads or paths, as `read_image` takes them) as a gallery of image sides,
    in upload order; files that are not usable images are skipped with a note."""
    if not files:
        raise DemoError("Upload some images to search in (several at once), or choose another gallery.")
    items, skipped = [], []
    for source in list(files)[:limit]:
        try:
            array, _ = read_image(source, image_size)
        except DemoError:
            array = None
        if array is None:
            skipped.append(source.get("orig_name") if isinstance(source, dict) else Path(str(source)).name)
            continue
        items.append(Side(array, ""))
    if not items:
        raise DemoError("None of the uploaded files is an image this app can read.")
    notes = [f"Skipped {len(skipped)} file(s) that are not readable images: {', '.join(map(str, skipped[:5]))}."] \
        if skipped else []
    if len(files) > limit:
        notes.append(f"Only the first {limit} of {len(files)} uploaded files are searched.")
    return items, notes


def server_folder(folder: str, root: str) -> Path:
    """The folder a user typed, allowed only inside the operator's gallery root ($FUSELIP_GALLERY_ROOT); a relative
    path is taken inside the root. Anything else is refused, so a visitor can never read the rest of the disk."""
    if not root:
        raise DemoError(f"Searching a folder on the server is off: the operator has not set {GALLERY_ROOT_ENV}. "
                        "Upload your images instead.")
    base = Path(root).expanduser().resolve()
    path = (base / Path(folder).expanduser()).resolve()  # an absolute `folder` replaces base; `..` and links resolved
    if not path.is_relative_to(base):
        raise DemoError(f"Folder {folder!r} is outside the gallery root the operator set ({GALLERY_ROOT_ENV}): "
                        "only folders inside it can be searched. Upload your images instead.")
    return path


def folder_gallery(folder: str, image_size: int, limit: int, root: str = "") -> list[Side]:
    """A folder of images under the gallery root (recursively, sorted) as a gallery of image sides; read again
    only when a file in it was added, removed or modified. Files that lead outside the root (links) are refused."""
    path = server_folder(folder, root)
    if not path.is_dir():
        raise DemoError(f"Gallery folder {folder!r} does not exist or is not a folder.")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    base = Path(root).expanduser().resolve()
    if any(not p.resolve().is_relative_to(base) for p in files):
        raise DemoError(f"Gallery folder {folder!r} holds links that lead outside the gallery root.")
    signature = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    with _FOLDERS_LOCK:
        cached = _FOLDERS.get(path)
    if cached is not None and cached[0] == signature:
        return cached[1]
    items = _read_folder(path, image_size, limit)
    with _FOLDERS_LOCK:
        _FOLDERS[path] = (signature, items)
    return items


def _read_folder(path: Path, image_size: int, limit: int) -> list[Side]:
    folder = str(path)
    try:
        data = read_folder(path, image_size, captions="none", skip_bad=True)
    except DataFileError as e:
        raise DemoError(f"Gallery folder {folder!r}: {e}") from None
    if not data.images:
        raise DemoError(f"Gallery folder {folder!r} holds no readable images.")
    return [Side(image, "") for image in data.images[:limit]]
