import re
import sys
import types

import numpy as np
import pytest
from PIL import Image

from sr_models.__main__ import main
from sr_models.imageio import read_image
from sr_models.resize import imresize
from tests.sr_models.test_checkpoint import small_checkpoint


@pytest.fixture(autouse=True)
def no_weights_dir(monkeypatch):
    monkeypatch.delenv("SRMOS_WEIGHTS_DIR", raising=False)


def write_image(path, shape, seed=0):
    array = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    Image.fromarray(array).save(path)
    return array


def test_bicubic_writes_pngs_named_after_inputs(tmp_path, capsys):
    a = write_image(tmp_path / "a.png", (6, 5, 3))
    write_image(tmp_path / "b.jpg", (4, 7, 3), seed=1)
    assert (
        main(
            [
                "upscale",
                "--method",
                "bicubic",
                str(tmp_path / "a.png"),
                str(tmp_path / "b.jpg"),
                "--output-dir",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    assert np.array_equal(read_image(tmp_path / "out" / "a.png"), imresize(a, scale=4))
    assert read_image(tmp_path / "out" / "b.png").shape == (16, 28, 3)
    assert "upscale bicubic" in capsys.readouterr().err  # the progress bar


def test_learned_method_keeps_grey_and_alpha(tmp_path):
    weights, _ = small_checkpoint(tmp_path / "w.pt", method="srresnet-mse")
    write_image(tmp_path / "grey.png", (5, 6))
    write_image(tmp_path / "alpha.png", (5, 6, 4))
    assert (
        main(
            [
                "upscale",
                "--method",
                "srresnet-mse",
                "--weights",
                str(weights),
                "--tile",
                "4",
                "--device",
                "cpu",
                str(tmp_path / "grey.png"),
                str(tmp_path / "alpha.png"),
                "--output-dir",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    assert read_image(tmp_path / "out" / "grey.png").shape == (20, 24)
    assert read_image(tmp_path / "out" / "alpha.png", mode="keep").shape == (20, 24, 4)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--method", "srgan"], r"error: unknown method 'srgan'; available: nn, bicubic"),
        (["--method", "srgan-vgg54"], "error: method srgan-vgg54 needs trained weights: pass --weights FILE"),
        (["--method", "srgan-vgg54", "--weights", "/nonexistent/w.pt"], "error: weights for srgan-vgg54 not found"),
        (
            ["--method", "srresnet-mse", "--weights", "WEIGHTS", "--tile", "-8"],
            r"error: tile \(-8\) and tile overlap \(40\) must not be negative",
        ),
    ],
)
def test_bad_method_or_weights_fail_before_writing(tmp_path, capsys, args, message):
    write_image(tmp_path / "a.png", (4, 4, 3))
    weights, _ = small_checkpoint(tmp_path / "w.pt", method="srresnet-mse")
    args = [str(weights) if arg == "WEIGHTS" else arg for arg in args]
    assert main(["upscale", *args, str(tmp_path / "a.png"), "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert re.match(message, err) and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_wrong_checkpoint_is_refused_unless_forced(tmp_path, capsys):
    weights, _ = small_checkpoint(tmp_path / "w.pt", method="srresnet-mse")
    write_image(tmp_path / "a.png", (4, 4, 3))
    common = [
        "upscale",
        "--method",
        "srgan-vgg54",
        "--weights",
        str(weights),
        str(tmp_path / "a.png"),
        "--output-dir",
        str(tmp_path / "out"),
    ]
    assert main(common) == 2
    assert "holds srresnet-mse weights, not srgan-vgg54" in capsys.readouterr().err
    assert main([*common, "--force"]) == 0 and (tmp_path / "out" / "a.png").exists()


def test_unreadable_image_is_reported_and_the_others_written(tmp_path, capsys):
    write_image(tmp_path / "good.png", (4, 4, 3))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert (
        main(
            [
                "upscale",
                "--method",
                "nn",
                str(tmp_path / "broken.png"),
                str(tmp_path / "good.png"),
                str(tmp_path / "missing.png"),
                "--output-dir",
                str(tmp_path / "out"),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "error: " in err and "broken.png" in err and "missing.png: no such file" in err
    assert "2 of 3 images failed" in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["good.png"]


def test_output_name_clashes_are_refused(tmp_path, capsys):
    write_image(tmp_path / "a.png", (4, 4, 3))
    write_image(tmp_path / "a.jpg", (4, 4, 3))
    before = (tmp_path / "a.png").read_bytes()
    assert (
        main(
            [
                "upscale",
                "--method",
                "nn",
                str(tmp_path / "a.png"),
                str(tmp_path / "a.jpg"),
                "--output-dir",
                str(tmp_path / "out"),
            ]
        )
        == 2
    )
    assert "would both be written to" in capsys.readouterr().err
    assert main(["upscale", "--method", "nn", str(tmp_path / "a.png"), "--output-dir", str(tmp_path)]) == 2
    assert "would overwrite an input; choose another --output-dir" in capsys.readouterr().err
    assert (tmp_path / "a.png").read_bytes() == before


def test_train_dispatches_lazily(monkeypatch):
    fake = types.ModuleType("sr_models.train.cli")
    fake.main = lambda argv: ("trained", argv)
    monkeypatch.setitem(sys.modules, "sr_models.train.cli", fake)
    assert main(["train", "--preset", "srresnet-mse"]) == ("trained", ["--preset", "srresnet-mse"])
    assert main([]) == 2 and main(["--help"]) == 0


def test_upscale_works_without_the_training_package(tmp_path, monkeypatch):
    # None in sys.modules makes any import of the package fail, as if it were not installed.
    monkeypatch.setitem(sys.modules, "sr_models.train", None)
    monkeypatch.setitem(sys.modules, "sr_models.train.cli", None)
    write_image(tmp_path / "a.png", (4, 4, 3))
    assert main(["upscale", "--method", "nn", str(tmp_path / "a.png"), "--output-dir", str(tmp_path / "out")]) == 0
    with pytest.raises(ImportError):
        main(["train"])
