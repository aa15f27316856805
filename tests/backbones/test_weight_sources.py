"""``--pretrained auto`` never starts from random weights silently: packaged, cached, or stop.

No hub is reachable here, so the caches are filled the way timm's and torchvision's
downloads fill them (files written by the test into temporary cache folders) and the
download is skipped with ``HF_HUB_OFFLINE=1``. The torchvision-format checkpoint is built
with torchvision's own ``resnet50()`` (random weights: the key mapping is what is tested).
"""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import huggingface_hub.constants
import pytest
import timm
import torch
import torchvision

from dgsamp.backbones import pretrained
from dgsamp.backbones.factory import create_backbone
from dgsamp.backbones.weights import find_weights
from dgsamp.errors import UserError
from tests.helpers import TINY_RUN, run_cli

TORCHVISION_RESNET50 = "resnet50-0676ba61.pth"  # torchvision's IMAGENET1K_V1 file = timm's resnet50.tv_in1k


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """Empty Hugging Face and torch hub caches, and no download attempts."""
    hf_cache, torch_hub = tmp_path / "hf", tmp_path / "torch_hub"
    hf_cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hf_cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_cache))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(torch_hub))
    yield hf_cache, torch_hub
    torch.hub.set_dir(previous)


@pytest.fixture(scope="module")
def torchvision_resnet50(tmp_path_factory):
    """A torchvision ResNet-50 state dict (fc included) saved as torchvision names its file."""
    state = torchvision.models.resnet50().state_dict()
    path = tmp_path_factory.mktemp("torchvision") / TORCHVISION_RESNET50
    torch.save(state, path)
    return path, state


def assert_every_tensor_landed(featurizer, state):
    loaded = featurizer.network.state_dict()
    assert set(loaded) == set(state) - {"fc.weight", "fc.bias"}  # the classifier is dropped
    assert all(torch.equal(loaded[name], state[name]) for name in loaded)


def test_torchvision_resnet50_file_loads_into_timm_resnet50(torchvision_resnet50):
    path, state = torchvision_resnet50
    backbone = create_backbone("resnet50.tv_in1k", (3, 224, 224), pretrained_file=path)
    assert backbone.weights == str(path)
    assert_every_tensor_landed(backbone.featurizer, state)


def test_auto_finds_torchvisions_download_in_the_torch_hub_cache(empty_caches, torchvision_resnet50, monkeypatch):
    _, torch_hub = empty_caches
    path, state = torchvision_resnet50
    (torch_hub / "checkpoints").mkdir(parents=True)
    cached = torch_hub / "checkpoints" / TORCHVISION_RESNET50
    cached.write_bytes(path.read_bytes())
    with pytest.raises(UserError, match="are damaged"):  # random weights: not the file its name promises
        create_backbone("resnet50.tv_in1k", (3, 224, 224))
    # torchvision's real file (SHA-256 0676ba61...) cannot be downloaded here: the hash check,
    # tested on its own below, is lifted for the rest of this test.
    monkeypatch.setattr(pretrained, "expected_sha256", lambda path: None)
    backbone = create_backbone("resnet50.tv_in1k", (3, 224, 224))
    assert backbone.weights == f"cache:{cached}"
    assert_every_tensor_landed(backbone.featurizer, state)
    assert backbone.mean == (0.485, 0.456, 0.406) and backbone.resolution == 224


def test_auto_finds_timms_download_in_the_hugging_face_cache(empty_caches):
    hf_cache, _ = empty_caches
    source = timm.create_model("test_efficientnet.r160_in1k")
    repo = hf_cache / "models--timm--test_efficientnet.r160_in1k"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    (repo / "snapshots" / "0123abcd").mkdir(parents=True)
    file = repo / "snapshots" / "0123abcd" / "pytorch_model.bin"
    torch.save(source.state_dict(), file)
    backbone = create_backbone("test_efficientnet.r160_in1k", (3, 64, 64))
    assert backbone.weights == f"cache:{file}"
    expected = source.state_dict()
    loaded = backbone.featurizer.network.state_dict()
    assert loaded and all(torch.equal(value, expected[name]) for name, value in loaded.items())


def hugging_face_download(hf_cache, repo_name: str, state: dict) -> tuple:
    """Lay out a file as huggingface_hub's download does: blobs/<sha256>, linked from the snapshot."""
    repo = hf_cache / f"models--timm--{repo_name}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    (repo / "blobs").mkdir()
    staged = repo / "blobs" / "staged"
    torch.save(state, staged)
    blob = staged.rename(repo / "blobs" / hashlib.sha256(staged.read_bytes()).hexdigest())
    (repo / "snapshots" / "0123abcd").mkdir(parents=True)
    link = repo / "snapshots" / "0123abcd" / "pytorch_model.bin"
    link.symlink_to(Path("..") / ".." / "blobs" / blob.name)
    return link, blob


def test_a_hugging_face_blob_must_match_its_sha256(empty_caches):
    hf_cache, _ = empty_caches
    source = timm.create_model("test_efficientnet.r160_in1k")
    link, blob = hugging_face_download(hf_cache, "test_efficientnet.r160_in1k", source.state_dict())
    assert create_backbone("test_efficientnet.r160_in1k", (3, 64, 64)).weights == f"cache:{link}"
    blob.write_bytes(blob.read_bytes()[:-100])  # a truncated download
    with pytest.raises(UserError) as caught:
        create_backbone("test_efficientnet.r160_in1k", (3, 64, 64))
    assert "\n" not in str(caught.value) and f"cached weights {link} are damaged" in str(caught.value)


def test_a_torch_hub_file_must_match_the_hash_in_its_name(tmp_path):
    data = b"weights"
    digest = hashlib.sha256(data).hexdigest()
    good = tmp_path / f"net-{digest[:8]}.pth"
    good.write_bytes(data)
    pretrained.check_cached_file(good)
    bad = tmp_path / f"net-{'0' * 8}.pth"
    bad.write_bytes(data)
    with pytest.raises(UserError, match=f"SHA-256 {digest[:12]}"):
        pretrained.check_cached_file(bad)
    unnamed = tmp_path / "net.pth"  # no hash in the name: nothing to check against
    unnamed.write_bytes(data)
    pretrained.check_cached_file(unnamed)


def test_auto_without_weights_stops_and_says_how_to_get_them(empty_caches):
    with pytest.raises(UserError) as caught:
        create_backbone("resnet50.tv_in1k", (3, 224, 224))
    message = str(caught.value)
    assert "\n" not in message and "no ImageNet weights for resnet50.tv_in1k" in message
    assert "--pretrained_file PATH" in message and TORCHVISION_RESNET50 in message
    assert "--pretrained none to train from scratch on purpose" in message
    assert create_backbone("resnet50.tv_in1k", (3, 224, 224), pretrained="none").weights == "random"


def test_cli_refuses_before_any_work(empty_caches, tmp_path):
    run_dir = tmp_path / "run"
    completed = run_cli("train", *TINY_RUN, "--backbone", "resnet18.tv_in1k", "--pretrained", "auto",
                        "--output_dir", str(run_dir))
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and "no ImageNet weights for resnet18.tv_in1k" in lines[0], completed.stderr
    assert not run_dir.exists()


def test_a_download_is_chosen_only_when_its_host_answers(monkeypatch):
    """The weights are found once, before the describe line: a hub whose host does not answer
    is 'none found' there and refused by the build with the same one line; real sockets on
    127.0.0.1 stand in for the hub (no proxy, so the probe goes to them)."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{port}")
        choice = find_weights("resnet18.a1_in1k", "hub")
        assert choice.kind == "missing" and choice.describe() == "none found (the download host cannot be reached)"
        assert f"the download cannot start (cannot reach 127.0.0.1:{port}" in choice.message
        with pytest.raises(UserError, match="the download cannot start"):
            create_backbone("resnet18.a1_in1k", (3, 224, 224), pretrained="hub")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert find_weights("resnet18.a1_in1k", "hub").describe() == "hub"  # choosing downloads nothing
    assert find_weights("resnet18.a1_in1k", "none").describe() == "none (random init)"
    assert find_weights("mnist_cnn").label() == "random"
    assert find_weights("resnet18.a1_in1k", pretrained_file="w.pt").label() == "w.pt"
