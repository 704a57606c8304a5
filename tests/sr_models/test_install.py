"""``python -m sr_models install``: training checkpoints become small inference weights with their provenance."""

import hashlib

import pytest
import torch

from sr_models.__main__ import main as cli
from sr_models.archs import SRResNet
from sr_models.archs.vgg import IMAGENET_SOURCE, RANDOM_SOURCE, load_vgg19_state_dict, vgg_weights_source
from sr_models.checkpoint import load_checkpoint, save_checkpoint
from sr_models.errors import CheckpointError, WeightsError
from sr_models.install import install, stand_in_features


@pytest.fixture
def training_checkpoint(tmp_path):
    torch.manual_seed(0)
    generator = SRResNet(num_features=8, num_blocks=1)
    optimiser_state = {"exp_avg": torch.zeros(200_000)}  # what the trainer's extra carries, and install drops
    provenance = {"content_loss": "mse", "data": ["train_demo"], "metrics": {"psnr": 29.5}, "vgg_weights": "not used"}
    return save_checkpoint(
        tmp_path / "step_00000700.pt",
        generator,
        method="srresnet-mse",
        step=700,
        provenance=provenance,
        extra={"training_state": optimiser_state},
    )


def test_install_keeps_the_generator_and_its_provenance_and_drops_the_training_state(training_checkpoint, tmp_path):
    path = install(training_checkpoint, "srresnet-mse", weights_dir=tmp_path / "weights", notes={"machine": "2 cores"})
    assert path == tmp_path / "weights" / "srresnet-mse.pt"
    installed, source = load_checkpoint(path), load_checkpoint(training_checkpoint)
    assert installed["extra"] == {} and path.stat().st_size < training_checkpoint.stat().st_size / 3
    assert all(torch.equal(installed["state_dict"][k], v) for k, v in source["state_dict"].items())
    facts = installed["provenance"]
    assert facts["training_steps"] == 700 and facts["metrics"] == {"psnr": 29.5} and facts["machine"] == "2 cores"
    assert facts["source_sha256"] == hashlib.sha256(training_checkpoint.read_bytes()).hexdigest()
    assert facts["stand_in_features"] is False and facts["source_checkpoint"] == "step_00000700.pt"


def test_install_refuses_another_methods_checkpoint_unless_forced(training_checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match="trained as srresnet-mse, not srgan-mse"):
        install(training_checkpoint, "srgan-mse", weights_dir=tmp_path)
    assert install(training_checkpoint, "srgan-mse", weights_dir=tmp_path, force=True).is_file()


def test_install_command_line(training_checkpoint, tmp_path, capsys):
    target = tmp_path / "out.pt"
    assert (
        cli(
            [
                "install",
                str(training_checkpoint),
                "--method",
                "srresnet-mse",
                "--output",
                str(target),
                "--note",
                "data=train_demo (40 images)",
            ]
        )
        == 0
    )
    assert "installed srresnet-mse" in capsys.readouterr().out
    assert load_checkpoint(target)["provenance"]["data"] == "train_demo (40 images)"
    assert cli(["install", str(tmp_path / "missing.pt"), "--method", "srresnet-mse"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_stand_in_vgg_features_are_recorded_and_marked(tmp_path):
    assert vgg_weights_source("mse") == "not used"
    assert vgg_weights_source("vgg54", random_weights=True) == RANDOM_SOURCE
    assert vgg_weights_source("vgg22") == IMAGENET_SOURCE
    other = tmp_path / "vgg19-mine.pth"
    other.write_bytes(b"not imagenet")
    assert vgg_weights_source("vgg54", other).startswith("file sha256:")
    assert stand_in_features({"content_loss": "vgg54", "vgg_weights": RANDOM_SOURCE})
    assert stand_in_features({"content_loss": "vgg22", "vgg_weights": "file sha256:00"})
    assert not stand_in_features({"content_loss": "vgg54", "vgg_weights": IMAGENET_SOURCE})
    assert not stand_in_features({"content_loss": "mse", "vgg_weights": "not used"})


def test_a_corrupt_vgg_file_fails_with_one_line(tmp_path):
    corrupt = tmp_path / "vgg19.pth"
    corrupt.write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(WeightsError) as caught:
        load_vgg19_state_dict(corrupt)
    assert "\n" not in str(caught.value) and "not a torch state_dict file" in str(caught.value)
