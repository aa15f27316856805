"""tllib's transforms: decode at 256 for 224, centre crop to evaluate, crops of 8-100 % to train."""

from __future__ import annotations

import torch

from dgsamp.config import parse_run_config
from dgsamp.data.augment import crop_flip_theta
from dgsamp.data.augment_tllib import TllibBatchTransform, decode_side

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # tllib utils.py's ImageNet normalisation


def test_decoded_at_256_for_224_and_evaluated_on_the_centre_crop():
    assert (decode_side(224), decode_side(96)) == (256, 110)
    x = torch.randint(0, 256, (2, 3, 256, 256), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    out = TllibBatchTransform(MEAN, STD, augment=False, size=224)(x)
    # torchvision CenterCrop(224) of 256: rows and columns 16..239; then (x / 255 - mean) / std
    expected = (x[:, :, 16:240, 16:240].float() / 255 - torch.tensor(MEAN).view(1, 3, 1, 1)) / \
        torch.tensor(STD).view(1, 3, 1, 1)
    assert out.shape == (2, 3, 224, 224) and torch.allclose(out, expected, atol=1e-6)


def test_training_crops_cover_tllibs_scale_range():
    theta = crop_flip_theta(4000, 256, 256, torch.Generator().manual_seed(1), torch.device("cpu"), (0.08, 1.0))
    area = theta[:, 0, 0].abs() * theta[:, 1, 1]  # crop area / image area
    assert area.min() < 0.12 and area.max() > 0.95 and area.min() >= 0.07  # DomainBed's would stay >= 0.7
    x = torch.randint(0, 256, (3, 3, 256, 256), dtype=torch.uint8)
    out = TllibBatchTransform(MEAN, STD, augment=True, size=224)(x, torch.Generator().manual_seed(2))
    assert out.shape == (3, 3, 224, 224)


def test_the_tllib_preset_selects_them_and_tensor_datasets_refuse_the_flag(capsys):
    config = parse_run_config(["--protocol", "tllib", "--dataset", "PACSMini", "--algorithm", "DANN", "--source", "P",
                               "--target", "S", "--output_dir", "x"])
    assert config.data.transforms == "tllib"
    assert parse_run_config(["--dataset", "PACSMini", "--output_dir", "x"]).data.transforms == "domainbed"
    from dgsamp.cli import main

    assert main(["train", "--dataset", "RotatedMNIST", "--transforms", "tllib", "--output_dir", "x"]) == 2
    assert "--transforms has no effect on RotatedMNIST" in capsys.readouterr().err
