"""Tiny archives with the exact layout of the real ones, made of real JPEG files (PIL)."""

from __future__ import annotations

import io
import tarfile
import zipfile

from PIL import Image


def jpeg_bytes(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def image_members(prefix: str, domains: list[str], classes: list[str], per_class: int) -> dict[str, bytes]:
    """``prefix/<domain>/<class>/<n>.jpg`` -> JPEG bytes (a different colour per file)."""
    members = {}
    for d, domain in enumerate(domains):
        for c, class_name in enumerate(classes):
            for n in range(per_class):
                members[f"{prefix}{domain}/{class_name}/{n:03d}.jpg"] = jpeg_bytes((40 * d, 60 * c, 30 * n))
    return members


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as handle:
        for name, data in members.items():
            handle.writestr(name, data)
    return buffer.getvalue()


def tar_bytes(members: dict[str, bytes], compression: str = "gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=f"w:{compression}") as handle:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            handle.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


PACS_DOMAINS = ["art_painting", "cartoon", "photo", "sketch"]
PACS_CLASSES = ["dog", "elephant", "giraffe", "guitar", "horse", "house", "person"]


def pacs_zip(per_class: int = 2) -> bytes:
    """DomainBed's PACS.zip: everything under ``kfold/<domain>/<class>/``."""
    return zip_bytes(image_members("kfold/", PACS_DOMAINS, PACS_CLASSES, per_class))
