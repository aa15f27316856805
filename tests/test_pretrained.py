"""Real ImageNet weights from the efficientnet-lite0 PyPI package, and local checkpoint files."""

from __future__ import annotations

import numpy as np
import timm
import torch
from PIL import Image

from dgsamp.backbones import create_backbone
from dgsamp.errors import UserError
from dgsamp.pretrained import load_checkpoint_file, load_packaged_weights

# ImageNet-1k class indices
ACOUSTIC_GUITAR, ELECTRIC_GUITAR = 402, 546
TUSKER, INDIAN_ELEPHANT, AFRICAN_ELEPHANT = 101, 385, 386


def imagenet_top5(model, path) -> list[int]:
    image = Image.open(path).convert("RGB").resize((224, 224), Image.Resampling.BICUBIC)
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255
    x = (x - 0.5) / 0.5
    with torch.no_grad():
        return model(x[None]).topk(5).indices[0].tolist()


def test_lite0_packaged_weights_classify_real_pacs_photos(shared_data):
    model = timm.create_model("tf_efficientnet_lite0").eval()
    load_packaged_weights(model, "tf_efficientnet_lite0")
    photos = shared_data / "pacs_original_sample" / "PACS" / "photo"
    guitars = sorted((photos / "guitar").iterdir())[:5]
    elephants = sorted((photos / "elephant").iterdir())[:5]
    guitar_hits = sum(bool({ACOUSTIC_GUITAR, ELECTRIC_GUITAR} & set(imagenet_top5(model, p))) for p in guitars)
    elephant_hits = sum(
        bool({TUSKER, INDIAN_ELEPHANT, AFRICAN_ELEPHANT} & set(imagenet_top5(model, p))) for p in elephants
    )
    assert guitar_hits >= 4 and elephant_hits >= 4
    # a random-init model does not: the weights really are loaded
    random_model = timm.create_model("tf_efficientnet_lite0").eval()
    assert sum(bool({ACOUSTIC_GUITAR, ELECTRIC_GUITAR} & set(imagenet_top5(random_model, p))) for p in guitars) <= 1


def test_backbone_auto_uses_packaged_weights_and_timm_config():
    backbone = create_backbone("tf_efficientnet_lite0", (3, 224, 224))
    assert backbone.weights == "packaged" and backbone.resolution == 224
    assert backbone.mean == (0.5, 0.5, 0.5) and backbone.featurizer.n_outputs == 1280
    assert create_backbone("tf_efficientnet_lite0", (3, 224, 224), resolution=96).resolution == 96
    assert create_backbone("tf_efficientnet_lite0", (3, 224, 224), pretrained="none").weights == "random"


def test_pretrained_file_round_trip_and_mismatch(tmp_path):
    source = timm.create_model("test_efficientnet", num_classes=10)
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    backbone = create_backbone("test_efficientnet", (3, 64, 64), pretrained_file=path)
    loaded = backbone.featurizer.network.state_dict()
    assert all(torch.equal(loaded[k], source.state_dict()[k]) for k in loaded)
    other = timm.create_model("test_resnet", num_classes=0)
    try:
        load_checkpoint_file(other, path)
    except UserError as error:
        assert "lacks" in str(error) or "shape" in str(error)
    else:
        raise AssertionError("a checkpoint of another architecture must be refused")


def test_freeze_bn_keeps_batchnorm_in_eval_mode():
    backbone = create_backbone("test_efficientnet", (3, 64, 64), pretrained="none", freeze_bn=True)
    backbone.featurizer.train()
    norms = [m for m in backbone.featurizer.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms and not any(m.training for m in norms)
    before = norms[0].running_mean.clone()
    backbone.featurizer(torch.randn(4, 3, 64, 64))
    assert torch.equal(before, norms[0].running_mean)
