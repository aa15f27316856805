"""Real ImageNet weights from the efficientnet-lite0 PyPI package, and local checkpoint files."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from dgsamp.backbones.factory import create_backbone
from dgsamp.backbones.pretrained import load_checkpoint_file, load_packaged_weights
from dgsamp.backbones.weights import packaged_weights_file
from dgsamp.errors import UserError

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
    load_packaged_weights(model, packaged_weights_file("tf_efficientnet_lite0"), "tf_efficientnet_lite0")
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


def test_dgsamp_model_pt_loads_into_the_featurizer(tmp_path):
    """dgsamp's model.pt: the algorithm's state_dict (featurizer.network.*, classifier.*,
    algorithm extras like a DANN discriminator) next to the run config."""
    trained = create_backbone("test_efficientnet", (3, 64, 64), pretrained="none").featurizer
    state = {f"featurizer.{k}": v for k, v in trained.state_dict().items()}
    state["classifier.weight"] = torch.randn(7, trained.n_outputs)
    state["classifier.bias"] = torch.randn(7)
    state["discriminator.0.weight"] = torch.randn(16, trained.n_outputs)
    path = tmp_path / "model.pt"
    torch.save({"state_dict": state, "algorithm": "DANN", "dataset": "PACSMini", "test_envs": [0]}, path)
    assert any(k.startswith("featurizer.network.") for k in state)
    loaded = create_backbone("test_efficientnet", (3, 64, 64), pretrained_file=path).featurizer
    expected = trained.state_dict()
    assert loaded.state_dict().keys() == expected.keys()
    assert all(torch.equal(v, expected[k]) for k, v in loaded.state_dict().items())
    # a custom backbone's keys sit under featurizer.<key>
    cnn = create_backbone("mnist_cnn", (2, 28, 28)).featurizer
    cnn_path = tmp_path / "cnn_model.pt"
    torch.save({"state_dict": {**{f"featurizer.{k}": v for k, v in cnn.state_dict().items()},
                               "classifier.weight": torch.randn(2, 128)}}, cnn_path)
    cnn_loaded = create_backbone("mnist_cnn", (2, 28, 28), pretrained_file=cnn_path).featurizer
    assert all(torch.equal(v, cnn.state_dict()[k]) for k, v in cnn_loaded.state_dict().items())


def test_non_tensor_values_and_non_state_dicts_are_user_errors(tmp_path):
    model = timm.create_model("test_resnet", num_classes=0)
    state = dict(model.state_dict())
    first = next(iter(state))
    state[first] = [1.0, 2.0]
    path = tmp_path / "odd.pt"
    torch.save({"state_dict": state}, path)
    with pytest.raises(UserError, match=f"{first} is a list, not a tensor"):
        load_checkpoint_file(model, path)
    torch.save([1, 2, 3], path)
    with pytest.raises(UserError, match="holds no state_dict"):
        load_checkpoint_file(model, path)


def test_custom_backbone_resolution_is_the_image_side():
    assert create_backbone("mnist_cnn", (3, 224, 224)).resolution == 224
    assert create_backbone("mnist_cnn", (3, 224, 224), resolution=64).resolution == 64
    assert create_backbone("mnist_cnn", (2, 28, 28)).resolution == 28


def test_timm_names_with_a_pretrained_tag_use_that_tags_config():
    tagged = create_backbone("resnet18.a3_in1k", (3, 224, 224), pretrained="none")
    assert tagged.resolution == 160  # a3 trains at 160 px; the default tag a1 at 224
    assert tagged.featurizer.network.pretrained_cfg["tag"] == "a3_in1k"
    assert tagged.featurizer.n_outputs == 512
    assert create_backbone("resnet18", (3, 224, 224), pretrained="none").resolution == 224
    with pytest.raises(UserError, match=r"unknown pretrained tag 'nope' for resnet18; known tags: .*a1_in1k"):
        create_backbone("resnet18.nope", (3, 224, 224), pretrained="none")
    with pytest.raises(UserError, match=r"unknown backbone 'resnet18x\.a1_in1k'"):
        create_backbone("resnet18x.a1_in1k", (3, 224, 224))
    # lite0's default tag names the same ImageNet-1k weights the package ships
    assert create_backbone("tf_efficientnet_lite0.in1k", (3, 224, 224)).weights == "packaged"
