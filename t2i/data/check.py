"""Scan a dataset: find every record, open every image and caption, count what is wrong.

Three sources share one record list:
  (a) the MM-CelebA-HQ layout: CelebA-HQ-img/, celeba-caption/<id>.txt, optional attribute file;
  (b) a Hugging Face imagefolder: images plus metadata.jsonl with "file_name" and "text" (str or list);
  (c) a CSV or JSONL manifest with "image" (path relative to the manifest) and "text" columns; in a CSV
      cell, several captions are separated by newlines.
A JSONL row may also name its image's attributes, {"attributes": {"left_red": 1, "left_circle": -1}}: any names,
values 1 or -1; they are what `t2i eval train-classifier` learns and the alignment evaluations score.
Bad input is converted (odd image modes) or skipped (everything else) and counted per problem, so a
training run never crashes halfway and never trains silently on garbage.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from t2i.data.captions import CELEBA_ATTRIBUTES

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
ATTRIBUTE_FILE = "CelebAMask-HQ-attribute-anno.txt"

PROBLEMS = {
    "missing_image": "image file does not exist",
    "empty_file": "zero-byte image file",
    "unreadable_image": "not an image PIL can identify",
    "corrupt_image": "truncated or corrupt image data",
    "too_small": "smaller than the target size (skipped; upscaling would train on blur)",
    "missing_captions": "no caption file or caption entry",
    "empty_captions": "caption file or entry is empty",
    "caption_not_utf8": "caption bytes are not valid UTF-8",
    "duplicate_id": "an image id seen before (the first one is kept)",
    "outside_dataset": "image or caption path is absolute or leaves the dataset folder, links followed (refused)",
    "too_large": "more pixels than PIL's decompression-bomb limit",
    "bad_row": "malformed metadata/manifest row",
    "bad_attribute_row": "malformed line of the attribute file (its image keeps no attributes)",
    "bad_attribute_file": "attribute file unreadable or inconsistent (attributes ignored where unsure)",
    "bad_attributes": 'a row\'s "attributes" is not an object of names to 1 or -1 (its image keeps none)',
}


@dataclass
class Record:
    id: str
    image: Path
    captions: list[str]
    attributes: dict[str, int] | None = None
    sha1: str = ""  # of the image file's bytes, set by the scan (the latent cache's content identity)


@dataclass
class ScanReport:
    source: str
    records: list[Record]  # usable records only
    problems: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    converted: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # image mode -> count
    size: int = 0  # the training size the scan checked against
    sizes: Counter = field(default_factory=Counter)  # (width, height) -> count, over every decoded image
    attribute_names: tuple[str, ...] = CELEBA_ATTRIBUTES  # the columns of attribute_vector: CelebA's 40, or
    # the names a manifest's rows use (in order of first use) when any is not a CelebA name

    @property
    def skipped(self) -> int:
        """How many problems were found (each one skipped an image or a row, or ignored an attribute line)."""
        return sum(len(paths) for paths in self.problems.values())

    def summary(self, show: int = 3) -> str:
        captions = [len(r.captions) for r in self.records]
        lines = [f"source: {self.source}", f"usable images: {len(self.records)}"]
        if captions:
            lines.append(f"captions per image: min {min(captions)}, mean {np.mean(captions):.2f}, max {max(captions)}")
        with_attributes = [r.attributes for r in self.records if r.attributes]
        if with_attributes:
            lines.append(f"attributes present (share of {len(with_attributes)} annotated images):")
            for name in self.attribute_names:
                share = np.mean([a.get(name, -1) == 1 for a in with_attributes])
                if share > 0:
                    lines.append(f"  {name:<20} {100 * share:5.1f}%")
        for mode, count in sorted(self.converted.items()):
            lines.append(f"converted to RGB from {mode}: {count}")
        if self.sizes:
            common = ", ".join(f"{w}x{h} ({n})" for (w, h), n in self.sizes.most_common(show))
            lines.append(f"image sizes: {common}{' ...' if len(self.sizes) > show else ''}")
        for problem, paths in sorted(self.problems.items()):
            examples = ", ".join(paths[:show]) + (" ..." if len(paths) > show else "")
            lines.append(f"skipped {problem} ({PROBLEMS[problem]}): {len(paths)}  e.g. {examples}")
        if self.problems.get("too_small"):
            lines.append(
                f"{len(self.problems['too_small'])} images are smaller than {self.size}px: {self.size_advice()}"
            )
        return "\n".join(lines)

    def size_advice(self) -> str:
        """The training size that keeps 9 in 10 of the decoded images: their short side, floored to a multiple of
        16 (what the presets' downsampling needs); a few tiny images do not pull it down."""
        sides = sorted(min(wh) for wh, n in self.sizes.items() for _ in range(n))
        size = sides[len(sides) // 10] // 16 * 16
        if size < 16:
            return "most images are under 16px, too small to train on"
        kept = sum(side >= size for side in sides)
        return (
            f"to train at the size your images have, use --size {size} here and data.image_size: {size} in the "
            f"config ({kept} of {len(sides)} images are at least that)"
        )


def detect_source(path: Path) -> str:
    if path.is_file() and path.suffix.lower() in {".csv", ".jsonl"}:
        return "manifest"
    if (path / "CelebA-HQ-img").is_dir():
        return "mmcelebahq"
    if (path / "metadata.jsonl").is_file():
        return "imagefolder"
    raise ValueError(
        f"{path}: not a dataset. Expected a folder with CelebA-HQ-img/ (MM-CelebA-HQ layout), a folder with "
        "metadata.jsonl (imagefolder), or a .csv/.jsonl manifest file"
    )


def _lines(path: Path, problems: dict[str, list[str]], problem: str):
    """(line number, text) of each line of a text file; lines that are not UTF-8 are counted under `problem`."""
    for number, raw in enumerate(path.read_bytes().splitlines(), 1):
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError:
            problems[problem].append(f"{path}:{number}: not UTF-8")


def read_attribute_file(path: Path, problems: dict[str, list[str]] | None = None) -> dict[str, dict[str, int]]:
    """Parse CelebAMask-HQ-attribute-anno.txt (or list_attr_celeba.txt): image stem -> {name: 1/-1}.

    Malformed lines are skipped and counted in `problems` (file:line); a ValueError only when `problems`
    is None (strict mode)."""
    found: dict[str, list[str]] = defaultdict(list)
    lines = [(n, line) for n, line in _lines(path, found, "bad_attribute_row") if line.strip()]
    rows = {}
    if len(lines) < 2:
        found["bad_attribute_file"].append(f"{path}: needs a count line and a header line")
    else:
        names = lines[1][1].split()
        for number, line in lines[2:]:
            file_name, *values = line.split()
            if len(values) != len(names) or any(v not in ("1", "-1", "0") for v in values):
                found["bad_attribute_row"].append(f"{path}:{number}: {len(values)} values, header has {len(names)}")
                continue
            rows[Path(file_name).stem] = {n: int(v) for n, v in zip(names, values, strict=True)}
        count = lines[0][1].strip()
        if count != str(len(rows) + len(found.get("bad_attribute_row", []))):
            found["bad_attribute_file"].append(f"{path}:1: first line says {count} images, the file lists {len(rows)}")
    if problems is None and found:
        raise ValueError("; ".join(where for found_here in found.values() for where in found_here))
    for problem, where in found.items():
        problems[problem].extend(where)
    return rows


def _decode_captions(raw: bytes) -> list[str] | str:
    """Caption lines, or the name of the problem."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "caption_not_utf8"
    captions = [line.strip() for line in text.splitlines() if line.strip()]
    return captions or "empty_captions"


def _texts(value) -> list[str] | str:
    if value is None:
        return "missing_captions"
    values = [value] if isinstance(value, str) else list(value) if isinstance(value, list) else []
    captions = [v.strip() for v in values if isinstance(v, str) and v.strip()]
    return captions or "empty_captions"


def inside(root: Path, name) -> Path | None:
    """root/name when `name` is a relative path that stays inside root, symbolic links followed, else None
    (absolute, `..`, a link out of the folder, not a string)."""
    if not isinstance(name, str) or not name.strip() or "\0" in name:
        return None
    relative = PurePosixPath(name.replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts or PureWindowsPath(name).drive:
        return None
    return root / relative if stays_inside(root.resolve(), root / relative) else None


def stays_inside(real_root: Path, path: Path) -> bool:
    """Whether `path`, its symbolic links followed, is inside `real_root` (resolved; a name too long to resolve is
    not)."""
    try:
        return path.resolve().is_relative_to(real_root)
    except (OSError, RuntimeError):  # a name over the system's limit, a loop of links
        return False


def _row_attributes(row: dict, where: str, problems: dict[str, list[str]]) -> dict[str, int] | None:
    """A JSONL row's {"attributes": {name: 1 or -1}}, or None (absent, or malformed: counted)."""
    value = row.get("attributes")
    if value is None:
        return None
    if (
        isinstance(value, dict)
        and value
        and all(isinstance(k, str) and k.strip() and type(v) is int and v in (1, -1) for k, v in value.items())
    ):
        return dict(value)
    problems["bad_attributes"].append(f"{where}: {json.dumps(value)[:200]}")
    return None


def _manifest_rows(path: Path, problems: dict[str, list[str]], image_key: str):
    """(file:line, image name, texts, attributes) of each row of a JSONL or CSV file; malformed rows are counted."""
    if path.suffix.lower() == ".csv":
        try:
            text = path.read_bytes().decode("utf-8-sig")  # a spreadsheet's byte-order mark is not a column name
        except UnicodeDecodeError as error:
            problems["bad_row"].append(f"{path}: not UTF-8 at byte {error.start}")
            return
        reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:  # a cell over csv's field limit; a quote never closed (it takes the rest)
                problems["bad_row"].append(f"{path}:{start}: {error}")
                continue
            where = f"{path}:{reader.line_num}"
            if not isinstance(row.get(image_key), str) or not row[image_key]:
                problems["bad_row"].append(f"{where}: no '{image_key}' value")
                continue
            yield where, row[image_key], (row.get("text") or "").splitlines(), None
    for number, line in _lines(path, problems, "bad_row"):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            problems["bad_row"].append(f"{where}: not JSON ({error.msg})")
            continue
        if not isinstance(row, dict) or not isinstance(row.get(image_key), str):
            problems["bad_row"].append(f"{where}: needs an object with a string '{image_key}'")
            continue
        yield where, row[image_key], row.get("text"), _row_attributes(row, where, problems)


def list_records(path: Path) -> tuple[str, list[Record], dict[str, list[str]]]:
    """Every record the source names (images not opened yet) and the caption- and row-level problems."""
    source = detect_source(path)
    problems: dict[str, list[str]] = defaultdict(list)
    candidates: list[tuple[str, Path, list[str] | str, dict[str, int] | None]] = []
    if source == "mmcelebahq":
        attribute_file = path / ATTRIBUTE_FILE
        attributes = read_attribute_file(attribute_file, problems) if attribute_file.is_file() else {}
        images = sorted(p for p in (path / "CelebA-HQ-img").iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        real_root = path.resolve()
        for image in images:
            caption_file = path / "celeba-caption" / f"{image.stem}.txt"
            if not (stays_inside(real_root, image) and stays_inside(real_root, caption_file)):
                problems["outside_dataset"].append(str(image))
                continue
            captions = _decode_captions(caption_file.read_bytes()) if caption_file.is_file() else "missing_captions"
            candidates.append((image.stem, image, captions, attributes.get(image.stem)))
    else:
        manifest, key = (path / "metadata.jsonl", "file_name") if source == "imagefolder" else (path, "image")
        for where, name, texts, attributes in _manifest_rows(manifest, problems, key):
            if any(len(part.encode()) > 255 for part in name.replace("\\", "/").split("/")):
                problems["bad_row"].append(f"{where}: a file name over 255 bytes")
                continue
            image = inside(manifest.parent, name)
            if image is None:
                problems["outside_dataset"].append(f"{where}: {name[:200]!r}")
                continue
            record_id = image.relative_to(manifest.parent).as_posix()  # ./0.png and 0.png are one image
            candidates.append((record_id, image, _texts(texts), attributes))

    records, seen = [], set()
    for record_id, image, captions, attributes in candidates:
        if record_id in seen:
            problems["duplicate_id"].append(str(image))
            continue
        seen.add(record_id)
        if isinstance(captions, str):
            problems[captions].append(str(image))
            continue
        records.append(Record(record_id, image, captions, attributes))
    return source, records, problems


def open_rgb(path: Path | BinaryIO) -> tuple[Image.Image, str]:
    """Decode an image fully and convert it to 8-bit RGB; returns the image and its original mode."""
    with Image.open(path) as image:
        image.load()
        mode = image.mode
        if mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grayscale: keep the top 8 bits
            scale = 257.0 if mode != "I" or image.getextrema()[1] > 255 else 1.0
            array = np.clip(np.asarray(image, dtype=np.float32) / scale, 0, 255).round().astype(np.uint8)
            return Image.fromarray(array, "L").convert("RGB"), mode
        if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))  # transparency over white
            return Image.alpha_composite(background, rgba).convert("RGB"), mode
        return image.convert("RGB"), mode


def check_image(path: Path, size: int) -> tuple[str | None, str, tuple[int, int] | None, str]:
    """(problem or None, original mode, (width, height), sha1 of the file's bytes) for one image file; the
    file is read once, and its hash is the content identity the latent cache keys its shards on."""
    if not path.is_file():
        return "missing_image", "", None, ""
    data = path.read_bytes()
    if not data:
        return "empty_file", "", None, ""
    sha1 = hashlib.sha1(data).hexdigest()
    try:
        image, mode = open_rgb(io.BytesIO(data))
    except Image.DecompressionBombError:
        return "too_large", "", None, sha1
    except UnidentifiedImageError:
        return "unreadable_image", "", None, sha1
    except (OSError, SyntaxError, ValueError):
        return "corrupt_image", "", None, sha1
    if min(image.size) < size:
        return "too_small", mode, image.size, sha1
    return None, mode, image.size, sha1


def _check_many(args: tuple[list[Path], int]) -> list[tuple[str | None, str, tuple[int, int] | None, str]]:
    paths, size = args
    return [check_image(p, size) for p in paths]


def scan_dataset(path: str | Path, size: int, workers: int | None = None) -> ScanReport:
    """Open every record of a dataset; usable records plus per-problem counts."""
    path = Path(path)
    source, records, problems = list_records(path)
    paths = [r.image for r in records]
    workers = workers or min(os.cpu_count() or 1, 8)
    if workers > 1 and len(paths) > 2000:
        chunks = [paths[i : i + 500] for i in range(0, len(paths), 500)]
        with ProcessPoolExecutor(workers) as pool:
            results = [r for chunk in pool.map(_check_many, [(c, size) for c in chunks]) for r in chunk]
    else:
        results = _check_many((paths, size))
    report = ScanReport(source, [], problems, size=size, attribute_names=attribute_names(records))
    for record, (problem, mode, image_size, sha1) in zip(records, results, strict=True):
        record.sha1 = sha1
        if image_size:
            report.sizes[image_size] += 1
        if problem:
            report.problems[problem].append(str(record.image))
            continue
        if mode != "RGB":
            report.converted[mode] += 1
        report.records.append(record)
    return report


def attribute_names(records: list[Record]) -> tuple[str, ...]:
    """CelebA's 40 attributes, or, when a record names another, every name the records use, in order of first use."""
    names = dict.fromkeys(name for r in records for name in (r.attributes or {}))
    return CELEBA_ATTRIBUTES if set(names) <= set(CELEBA_ATTRIBUTES) else tuple(names)


def attribute_vector(attributes: dict[str, int] | None, names: tuple[str, ...] = CELEBA_ATTRIBUTES) -> list[int]:
    """The attributes `names` as 1/-1, or 0 where the source does not say."""
    return [(attributes or {}).get(name, 0) for name in names]
