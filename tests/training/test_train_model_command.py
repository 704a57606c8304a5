"""manage.py train_model takes the same flags as python -m sr_models train and reports user errors as CommandError."""

import pytest
from django.core.management import CommandError, call_command

from sr_models.checkpoint import load_checkpoint

from tests.training.helpers import tiny_cli_args


def test_train_model_command(images, tmp_path, capsys):
    call_command(
        "train_model",
        "--preset",
        "srresnet-vgg22",
        "--vgg-random-weights-for-testing",
        *tiny_cli_args(images, batch_size=2),
        "--steps",
        "2",
        "--output-dir",
        str(tmp_path / "run"),
    )
    assert "trained to step 2" in capsys.readouterr().out
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoints" / "step_00000002.pt")
    assert checkpoint["method"] == "srresnet-vgg22" and checkpoint["step"] == 2
    with pytest.raises(CommandError, match="no training data"):
        call_command("train_model", "--preset", "srresnet-mse")
