"""OpenEDS (Garbin et al. 2019) on disk: a reader of the real layout and an exporter that writes it.

Layout (the real one; see DESIGN.md §2)::

    ROOT/Semantic_Segmentation_Dataset/{train,validation,test}/images/NAME.png   grey 400×640 uint8
    ROOT/Semantic_Segmentation_Dataset/{train,validation,test}/labels/NAME.npy   uint8 400×640, 0..3
    ROOT/Generative_Dataset/{train,validation,test}/NAME.png   (also accepted: …/{split}/images/NAME.png)
    ROOT/Generative_Dataset/test/labels/NAME.npy               (the challenge's target masks)
    ROOT/Sequence_Dataset/…                                    (not read: no task here uses sequences)
    ROOT/OpenEDS_{train,validation,test}_userID_mapping_to_images.json

A mapping JSON is a list of ``{"id", "semantic_segmenation_images", "generative_images",
"sequence_images"}`` (the key's typo is the real file's); the person of an image comes from it.
Real OpenEDS has no eye-side, gaze or landmark labels, so real samples have ``side = "?"`` and no
``gaze``/``landmarks``. An eyegen export adds ``ROOT/eyegen_meta.json`` (side, gaze, landmarks
and eyelid per image name); when that sidecar is present the reader uses it, so a synthetic
export reads back completely while a real copy still loads.

Structural problems (missing folders, an image without its label, images absent from the
mapping) raise :class:`DatasetError` when the reader is built; file contents (corrupt PNG, label
values, sizes) are checked when a sample is read, and :meth:`OpenEDS.validate` checks every file
and reports every problem at once.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...core.runtime import tqdm
from .datasets import split_persons
from .errors import DatasetError, note_data_read, read_image, read_label

__all__ = ["OpenEDS", "OpenEDSRecord", "export_openeds", "SPLITS", "SUBSETS", "SIDECAR_NAME", "mapping_path"]

SPLITS = ("train", "validation", "test")
SUBSETS = {"semantic": "Semantic_Segmentation_Dataset", "generative": "Generative_Dataset"}
MAPPING_KEYS = {"semantic": "semantic_segmenation_images", "generative": "generative_images"}  # sic
SEQUENCE_DIR = "Sequence_Dataset"
SIDECAR_NAME = "eyegen_meta.json"
SIDECAR_FORMAT = "eyegen-openeds-meta"
UNKNOWN_SIDE = "?"


def mapping_path(root, split: str) -> Path:
    return Path(root) / f"OpenEDS_{split}_userID_mapping_to_images.json"


@dataclass(frozen=True)
class OpenEDSRecord:
    """What the reader knows about one sample without decoding it."""
    name: str                    # file stem, e.g. "000000240768"
    image_path: Path | None      # None: a generative-test mask whose image is withheld
    label_path: Path | None      # None: no mask for this image
    person: int
    person_id: str               # the mapping's "id" as written
    side: str                    # "L"/"R" from the sidecar, else "?"


def _stem(entry: str) -> str:
    """Mapping entries may carry a folder and/or an extension; files are matched by stem."""
    name = Path(str(entry)).name
    return re.sub(r"\.(png|npy)$", "", name, flags=re.IGNORECASE)


def _list_files(folder: Path, suffix: str) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() == suffix}


def _load_json(path: Path, what: str):
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{what} is not valid JSON ({exc})", path=path,
                           fix="re-copy it from the original dataset archive") from None


def _read_mappings(root: Path) -> dict[str, dict[str, dict[str, set[str]]]]:
    """Every mapping JSON present → ``{split: {person_id: {subset: set of stems}}}``."""
    out = {}
    for split in SPLITS:
        path = mapping_path(root, split)
        if not path.is_file():
            continue
        data = _load_json(path, "the userID mapping")
        if not isinstance(data, list) or not all(isinstance(e, dict) and "id" in e for e in data):
            raise DatasetError("the userID mapping should be a JSON list of objects with an 'id' and lists "
                               f"{sorted(MAPPING_KEYS.values())}", path=path,
                               fix="re-copy it from the original dataset archive")
        out[split] = {str(e["id"]): {sub: {_stem(n) for n in e.get(key) or []} for sub, key in MAPPING_KEYS.items()}
                      for e in data}
    return out


def _person_numbers(ids) -> dict[str, int]:
    """Integer person ids: the digits of the mapping ids when those are distinct (``"U127"`` → 127),
    else positions in the sorted list of all ids (so numbers never collide across splits)."""
    ids = sorted(set(ids))
    digits = [re.findall(r"\d+", i) for i in ids]
    if all(len(d) == 1 for d in digits) and len({int(d[0]) for d in digits}) == len(ids):
        return {i: int(d[0]) for i, d in zip(ids, digits)}
    return {i: k for k, i in enumerate(ids)}


def _read_sidecar(root: Path) -> dict:
    path = root / SIDECAR_NAME
    if not path.is_file():
        return {}
    data = _load_json(path, "the eyegen sidecar")
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT or not isinstance(data.get("images"), dict):
        raise DatasetError(f"{SIDECAR_NAME} is not an eyegen OpenEDS sidecar (expected format {SIDECAR_FORMAT!r})",
                           path=path, fix=f"delete or rename {SIDECAR_NAME}; it is optional and only eyegen writes it")
    return data["images"]


class OpenEDS:
    """Random-access reader of one split of one OpenEDS subset.

    ``OpenEDS(root, split, subset)[i]`` is a dict like ``SyntheticEyes.__getitem__``: ``image``
    uint8 (1, H, W), ``mask`` uint8 (H, W) when a label exists, ``landmarks``/``eyelid``/``gaze``
    when the eyegen sidecar has them, ``person`` int, ``side`` ("L"/"R", or "?" for real data),
    ``index`` and ``path``. ``records[i]`` gives the metadata without decoding.

    ``require_labels=False`` lets a semantic split without a ``labels/`` folder load mask-less.
    """

    def __init__(self, root, split: str = "train", subset: str = "semantic", *, require_labels: bool = True):
        if split not in SPLITS:
            raise DatasetError(f"unknown OpenEDS split {split!r}", fix=f"use one of {list(SPLITS)}")
        if subset not in SUBSETS:
            raise DatasetError(f"unknown OpenEDS subset {subset!r}", fix=f"use one of {list(SUBSETS)} "
                               "(sequences are not read by eyegen)")
        self.root, self.split, self.subset = Path(root).expanduser(), split, subset
        folder = self._check_root()
        images, labels = self._list_split(folder, require_labels)
        self.records = self._build_records(images, labels)
        self.persons = sorted({r.person for r in self.records})
        note_data_read("OpenEDS", self.root, synthetic=bool(self._sidecar))

    # -- building ----------------------------------------------------------------------------------
    def _check_root(self) -> Path:
        root = self.root
        if not root.is_dir():
            raise DatasetError("the OpenEDS folder does not exist" if not root.exists() else "the OpenEDS path is not a folder",
                               path=root, fix="point the reader (or $EYEGEN_OPENEDS_DIR) at the folder holding "
                               f"{SUBSETS['semantic']}/, {SUBSETS['generative']}/ and the userID mapping JSONs")
        expected = [*SUBSETS.values(), *(mapping_path(root, s).name for s in SPLITS)]
        found = sorted(p.name for p in root.iterdir())
        folder = root / SUBSETS[self.subset] / self.split
        if not folder.is_dir():
            hint = ("this looks like a subset folder itself: pass its parent" if set(SPLITS) & set(found)
                    else f"pass the folder that holds {SUBSETS[self.subset]}/{self.split}/")
            raise DatasetError(f"not an OpenEDS folder: {SUBSETS[self.subset]}/{self.split}/ is missing. "
                               f"Expected entries: {expected}; found: {found[:12]}{' …' if len(found) > 12 else ''}",
                               path=root, fix=hint)
        if not mapping_path(root, self.split).is_file():
            raise DatasetError(f"the userID mapping for split {self.split!r} is missing; the person of each image comes "
                               f"from it. Found: {found[:12]}", path=mapping_path(root, self.split),
                               fix=f"copy {mapping_path(root, self.split).name} from the OpenEDS archive into {root}")
        return folder

    def _list_split(self, folder: Path, require_labels: bool):
        image_dir = folder / "images"
        if self.subset == "generative" and not image_dir.is_dir():
            image_dir = folder  # the generative images sit directly in {split}/
        images = _list_files(image_dir, ".png") if image_dir.is_dir() else {}
        label_dir = folder / "labels"
        labels = _list_files(label_dir, ".npy") if label_dir.is_dir() else {}
        if self.subset == "semantic":
            if not image_dir.is_dir():
                raise DatasetError(f"{image_dir.relative_to(self.root)}/ is missing", path=image_dir,
                                   fix="the semantic split needs images/ and labels/ folders")
            if not label_dir.is_dir() and require_labels:
                raise DatasetError(f"{label_dir.relative_to(self.root)}/ is missing", path=label_dir,
                                   fix="copy the labels/ folder from the archive, or pass require_labels=False "
                                   "to read the images without masks")
            if label_dir.is_dir():
                lonely = sorted(set(images) - set(labels))
                if lonely:
                    raise DatasetError(f"{len(lonely)} image(s) have no label .npy beside them, e.g. {lonely[:5]}",
                                       path=image_dir / f"{lonely[0]}.png",
                                       fix=f"put NAME.npy for each NAME.png into {label_dir}, or remove those images")
                orphans = sorted(set(labels) - set(images))
                if orphans:
                    raise DatasetError(f"{len(orphans)} label(s) have no image beside them, e.g. {orphans[:5]}",
                                       path=label_dir / f"{orphans[0]}.npy",
                                       fix=f"put NAME.png for each NAME.npy into {image_dir}, or remove those labels")
        if not images and not labels:
            raise DatasetError(f"no .png images found for OpenEDS {self.subset}/{self.split}", path=image_dir,
                               fix="check that the archive was fully extracted into this folder")
        return images, labels

    def _build_records(self, images: dict, labels: dict) -> list[OpenEDSRecord]:
        mappings = _read_mappings(self.root)
        numbers = _person_numbers(pid for m in mappings.values() for pid in m)
        owner: dict[str, str] = {}
        for pid, subsets in mappings[self.split].items():
            for stem in subsets[self.subset]:
                if owner.setdefault(stem, pid) != pid:
                    raise DatasetError(f"image {stem!r} is listed under two persons ({owner[stem]!r} and {pid!r})",
                                       path=mapping_path(self.root, self.split),
                                       fix="re-copy the mapping from the original dataset archive")
        names = sorted(set(images) | set(labels))
        unmapped = [n for n in names if n not in owner]
        if unmapped:
            raise DatasetError(f"{len(unmapped)} {self.subset} image(s) of split {self.split!r} are not listed in the "
                               f"userID mapping (key {MAPPING_KEYS[self.subset]!r}), e.g. {unmapped[:5]}",
                               path=mapping_path(self.root, self.split),
                               fix="use the mapping JSON that came with these images, or remove the unlisted files")
        self._sidecar = _read_sidecar(self.root)
        return [OpenEDSRecord(name=n, image_path=images.get(n), label_path=labels.get(n),
                              person=numbers[owner[n]], person_id=owner[n],
                              side=str(self._sidecar.get(n, {}).get("side", UNKNOWN_SIDE)))
                for n in names]

    # -- metadata (no decoding) --------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    def person_of(self, index: int) -> int:
        return self.records[index].person

    def side_of(self, index: int) -> str:
        return self.records[index].side

    def has_mask(self, index: int) -> bool:
        return self.records[index].label_path is not None

    def has_image(self, index: int) -> bool:
        return self.records[index].image_path is not None

    def has_gaze(self, index: int) -> bool:
        """Real OpenEDS has no gaze; an eyegen export's sidecar does."""
        return "gaze" in self._sidecar.get(self.records[index].name, {})

    def __repr__(self) -> str:
        return (f"OpenEDS({str(self.root)!r}, split={self.split!r}, subset={self.subset!r}: {len(self)} samples, "
                f"{len(self.persons)} persons)")

    # -- reading -----------------------------------------------------------------------------------
    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        rec = self.records[index]
        out: dict = {}
        image = read_image(rec.image_path, "L") if rec.image_path is not None else None
        if rec.label_path is not None:
            mask = read_label(rec.label_path)
            if image is not None and mask.shape != image.shape:
                raise DatasetError(f"label is {mask.shape[0]}×{mask.shape[1]} but its image is "
                                   f"{image.shape[0]}×{image.shape[1]}", path=rec.label_path,
                                   fix="a label must have exactly its image's size; re-copy the pair from the archive")
            out["mask"] = torch.from_numpy(mask)
        if image is not None:
            out["image"] = torch.from_numpy(image)[None]
        meta = self._sidecar.get(rec.name, {})
        for key in ("landmarks", "eyelid", "gaze"):
            if key in meta:
                out[key] = torch.tensor(meta[key], dtype=torch.float32)
        out.update(person=rec.person, side=rec.side, index=int(index) % len(self),
                   path=str(rec.image_path or rec.label_path))
        return out

    def validate(self, *, raise_errors: bool = True, progress: bool = True) -> list[str]:
        """Read every file; return every problem found (and raise one DatasetError listing them all)."""
        problems = []
        for i in tqdm(range(len(self)), desc=f"checking OpenEDS {self.subset}/{self.split}", disable=not progress):
            try:
                self[i]
            except DatasetError as err:
                problems.append(str(err))
        if problems and raise_errors:
            raise DatasetError(f"{len(problems)} of {len(self)} OpenEDS {self.subset}/{self.split} samples are bad:\n"
                               + "\n".join(problems), fix="fix or remove the files named above")
        return problems


# -- exporter ------------------------------------------------------------------------------------
def _labelled(local: int) -> bool:
    """Which of a person's images are labelled: pairs of local indices alternate (0,1 yes; 2,3 no…),
    so both eyes of everyone appear in both subsets."""
    return (local // 2) % 2 == 0


def export_openeds(source, out, *, seed: int = 0, progress: bool = True, batch_size: int = 16) -> dict:
    """Write the renderer's NIR images in the real OpenEDS layout, plus the eyegen sidecar.

    ``source`` is a ``SyntheticEyes`` with ``modality="nir"``. Persons are split by
    :func:`~eyegen_lib.science.data.datasets.split_persons` (70/15/15, ``seed``), so at least 3 persons
    are needed. Half of each person's images (both eyes) go to the semantic subset with ``.npy``
    labels, the rest to the generative subset without; generative-test images also get their
    ``test/labels/`` masks, as the real challenge provides. Person ``p`` gets the id ``"U{p:03d}"``
    and image ``i`` the name ``{i:012d}``. Sequences are not written. ``out`` must be empty or new.
    """
    from PIL import Image

    spec = source.spec
    if spec.modality != "nir":
        raise ValueError(f"OpenEDS images are near-infrared grey: the source renders {spec.modality!r}")
    out = _fresh_folder(out)
    splits = split_persons(range(spec.n_persons), seed=seed)
    if any(not splits[s] for s in SPLITS):
        raise ValueError(f"an OpenEDS export needs at least 3 persons (one per split); got {spec.n_persons}")
    split_of = {p: s for s, ps in splits.items() for p in ps}
    for s in SPLITS:
        for sub in ("images", "labels"):
            (out / SUBSETS["semantic"] / s / sub).mkdir(parents=True)
        (out / SUBSETS["generative"] / s).mkdir(parents=True)
    (out / SUBSETS["generative"] / "test" / "labels").mkdir()

    mapping = {s: {} for s in SPLITS}
    sidecar = {}
    order = list(range(len(source)))
    bar = tqdm(total=len(order), desc="exporting OpenEDS", disable=not progress)
    for start in range(0, len(order), batch_size):
        batch = source.render(order[start:start + batch_size])
        for b, index in enumerate(batch["index"].tolist()):
            person, side = int(batch["person"][b]), batch["side"][b]
            split, name = split_of[person], f"{index:012d}"
            labelled = _labelled(index % spec.images_per_person)
            if labelled:
                image_path = out / SUBSETS["semantic"] / split / "images" / f"{name}.png"
                label_dir = out / SUBSETS["semantic"] / split / "labels"
            else:
                image_path = out / SUBSETS["generative"] / split / f"{name}.png"
                label_dir = out / SUBSETS["generative"] / "test" / "labels" if split == "test" else None
            Image.fromarray(batch["image"][b, 0].numpy()).save(image_path)
            if label_dir is not None:
                np.save(label_dir / f"{name}.npy", batch["mask"][b].numpy())
            entry = mapping[split].setdefault(person, {"id": f"U{person:03d}", MAPPING_KEYS["semantic"]: [],
                                                       MAPPING_KEYS["generative"]: [], "sequence_images": []})
            entry[MAPPING_KEYS["semantic" if labelled else "generative"]].append(f"{name}.png")
            sidecar[name] = {"side": side, "person": person, "source_index": index,
                             "gaze": batch["gaze"][b].tolist(), "landmarks": batch["landmarks"][b].tolist(),
                             "eyelid": batch["eyelid"][b].tolist()}
        bar.update(len(batch["index"]))
    bar.close()
    for s in SPLITS:
        mapping_path(out, s).write_text(json.dumps([mapping[s][p] for p in sorted(mapping[s])], indent=1))
    (out / SIDECAR_NAME).write_text(json.dumps({"format": SIDECAR_FORMAT, "version": 1, "seed": spec.seed,
                                                "size": list(spec.size), "images": sidecar}))
    return {"format": "openeds", "out": str(out), "images": len(order), "size": list(spec.size),
            "persons": {s: list(splits[s]) for s in SPLITS},
            "semantic_images": sum(_labelled(i % spec.images_per_person) for i in order)}


def _fresh_folder(out) -> Path:
    """Exporters never overwrite or delete: ``out`` must not exist or be an empty folder."""
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError("the export folder already exists and is not empty", path=out,
                           fix="choose a new or empty folder; eyegen never overwrites an existing dataset")
    out.mkdir(parents=True, exist_ok=True)
    return out
