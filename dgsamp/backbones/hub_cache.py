"""ImageNet weights that timm or torchvision already downloaded, found without the network.

For a timm name (``arch`` or ``arch.tag``) timm's pretrained config gives two places:

- the Hugging Face hub cache (``$HF_HUB_CACHE``, default ``~/.cache/huggingface/hub``), where
  timm's downloads land: ``models--timm--<arch.tag>/snapshots/<revision>/`` holding
  ``model.safetensors`` or ``pytorch_model.bin`` (``huggingface_hub.try_to_load_from_cache``
  resolves ``refs/main`` exactly as a download would);
- torch's hub cache (``$TORCH_HOME/hub/checkpoints/<file name of the config's url>``), where
  torchvision's and older timm's downloads land, e.g. torchvision's ResNet-50 ImageNet
  weights ``resnet50-0676ba61.pth`` (timm's ``resnet50.tv_in1k``).

A file found there is checked before it is loaded, as the downloaders check theirs: a torch
hub file's name carries a prefix of its SHA-256 (``-0676ba61.``, ``torch.hub``'s
``check_hash``), and a Hugging Face snapshot file links to ``blobs/<sha256>`` for weights
stored with LFS. A truncated or damaged file is refused with one line instead of failing
deep inside unpickling, or loading wrong weights.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from urllib.parse import urlparse

import timm.models
import torch

from dgsamp.errors import UserError

HF_FILENAMES = ("model.safetensors", "pytorch_model.bin")
TORCH_HUB_HASH = re.compile(r"-([a-f0-9]{8,64})\.")  # as torch.hub's HASH_REGEX, at least 8 digits
HF_BLOB_HASH = re.compile(r"[a-f0-9]{64}")
OFFLINE_VALUES = {"1", "true", "yes", "on"}


def pretrained_config(name: str):
    """timm's pretrained config of ``name`` (its default tag when untagged), or None."""
    try:
        return timm.models.get_pretrained_cfg(name)
    except Exception:  # timm raises several types for unknown names
        return None


def hub_offline() -> bool:
    """Whether the user asked for no hub access (``HF_HUB_OFFLINE``), read at call time."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in OFFLINE_VALUES


def torch_hub_file(url: str) -> Path:
    """Where torch's ``load_state_dict_from_url`` (torchvision, old timm) caches ``url``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def cached_weights_file(name: str) -> Path | None:
    """A cached checkpoint of the weights ``name`` names, or None."""
    config = pretrained_config(name)
    if config is None:
        return None
    if config.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        repo_id, _, revision = config.hf_hub_id.partition("@")
        filenames = (config.hf_hub_filename,) if config.hf_hub_filename else HF_FILENAMES
        for filename in filenames:
            found = try_to_load_from_cache(repo_id, filename, revision=revision or None)
            if isinstance(found, str) and Path(found).is_file():
                return Path(found)
    if config.url and torch_hub_file(config.url).is_file():
        return torch_hub_file(config.url)
    return None


def cache_locations(name: str) -> str:
    """Where :func:`cached_weights_file` looked, for error messages."""
    from huggingface_hub import constants

    config = pretrained_config(name)
    places = [str(constants.HF_HUB_CACHE)]
    if config is not None and config.url:
        places.append(str(torch_hub_file(config.url)))
    return " and ".join(places)


def torchvision_file_name(name: str) -> str | None:
    """The file name torchvision publishes these weights under (e.g. ``resnet50-0676ba61.pth``)."""
    config = pretrained_config(name)
    if config is None or not config.url or "download.pytorch.org" not in config.url:
        return None
    return torch_hub_file(config.url).name


def expected_sha256(path: Path) -> str | None:
    """The SHA-256 (or its prefix) a cached file must have, or None when its cache states none."""
    if path.is_symlink() and HF_BLOB_HASH.fullmatch(path.resolve().name):
        return path.resolve().name
    match = TORCH_HUB_HASH.search(path.name)
    return match.group(1) if match else None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_cached_file(path: Path) -> None:
    """Raise a one-line UserError when ``path``'s SHA-256 differs from what its cache states."""
    expected = expected_sha256(path)
    if expected is None:
        return
    actual = sha256_of(path)
    if not actual.startswith(expected):
        raise UserError(f"cached weights {path} are damaged (SHA-256 {actual[:12]}..., the cache names "
                        f"{expected[:12]}...); delete the file and download it again, or pass --pretrained_file")
