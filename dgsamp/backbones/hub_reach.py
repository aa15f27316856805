"""Whether the host a weight download would talk to can be reached, found out in seconds.

timm downloads through ``huggingface_hub`` (or ``torch.hub`` for URL weights), whose HTTP
layer retries a failed request with back-off (1 + 2 + 4 + 8 + 8 s per file, two file names
tried): about 40 s before an offline machine learns that nothing can be downloaded. One TCP
connection attempt to the host (or to the HTTPS proxy, when one is set) with a short
timeout answers the same question at once.
"""

from __future__ import annotations

import socket
import urllib.request
from urllib.parse import urlparse

CONNECT_TIMEOUT_S = 5.0


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
