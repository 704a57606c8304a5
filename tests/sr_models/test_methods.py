import re
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from sr_models import methods, paths
from sr_models.archs import Discriminator
from sr_models.checkpoint import save_checkpoint
from sr_models.errors import CheckpointError, SRMOSError, UnknownMethodError, WeightsError
from sr_models.inference import upscale_array
from sr_models.methods import Upscaler, available, load, register, weights_path_for
from sr_models.resize import imresize
from tests.sr_models.test_checkpoint import small_checkpoint

PAPER_METHODS = ["nn", "bicubic", "srresnet-mse", "srresnet-vgg22", "srgan-mse", "srgan-vgg22", "srgan-vgg54"]
PACKAGE_WEIGHTS_DIR = methods.SHIPPED_WEIGHTS_DIR  # before the fixture below points it elsewhere


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """No $SRMOS_WEIGHTS_DIR, and empty default and shipped weights folders: what is on this machine cannot leak in."""
    monkeypatch.delenv("SRMOS_WEIGHTS_DIR", raising=False)
    monkeypatch.setattr(paths, "DEFAULT_WEIGHTS_DIR", tmp_path / "default-weights")
    monkeypatch.setattr(methods, "SHIPPED_WEIGHTS_DIR", tmp_path / "shipped-weights")
    saved = dict(methods._REGISTRY)
    yield
    methods._REGISTRY.clear()
    methods._REGISTRY.update(saved)


def lr_image(shape=(6, 5, 3), seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_available_lists_the_paper_methods_in_order():
    assert available()[:7] == PAPER_METHODS


@pytest.mark.parametrize("name, kind", [("nn", "nearest"), ("bicubic", "bicubic")])
def test_resize_methods_are_matlab_imresize(name, kind):
    upscaler = load(name)
    assert (upscaler.name, upscaler.scale, upscaler.needs_weights) == (name, 4, False)
    for shape in [(6, 5, 3), (7, 3), (4, 4, 4)]:
        image = lr_image(shape)
        assert np.array_equal(upscaler.upscale(image), imresize(image, scale=4, method=kind))
    with pytest.raises(SRMOSError, match="uint8"):
        upscaler.upscale(np.zeros((4, 4, 3)))


def test_learned_method_loads_its_checkpoint(tmp_path):
    path, model = small_checkpoint(tmp_path / "mse.pt", method="srresnet-mse")
    upscaler = load("srresnet-mse", weights=path, device="cpu")
    assert (upscaler.name, upscaler.scale, upscaler.needs_weights) == ("srresnet-mse", 4, True)
    assert upscaler.info["step"] == 7 and upscaler.info["weights"] == str(path)
    image = lr_image()
    # The fused network gives the plain eager model's output.
    assert np.abs(upscaler.upscale(image).astype(int) - upscale_array(model, image)).max() <= 1
    assert [a.shape for a in upscaler.upscale_many([image, image[:3]])] == [(24, 20, 3), (12, 20, 3)]


def test_weights_folder_convention(tmp_path, monkeypatch):
    assert weights_path_for("srgan-vgg54", tmp_path) == tmp_path / "srgan-vgg54.pt"
    small_checkpoint(weights_path_for("srgan-vgg54", tmp_path), method="srgan-vgg54")
    assert load("srgan-vgg54", weights=tmp_path).info["method"] == "srgan-vgg54"
    monkeypatch.setenv("SRMOS_WEIGHTS_DIR", str(tmp_path))
    assert load("srgan-vgg54").info["weights"] == str(tmp_path / "srgan-vgg54.pt")
    with pytest.raises(
        WeightsError,
        match=r"method srgan-mse needs trained weights: pass --weights FILE .*"
        r"set SRMOS_WEIGHTS_DIR to a folder holding srgan-mse.pt \(looked in " + re.escape(str(tmp_path)),
    ):
        load("srgan-mse")


def test_shipped_weights_come_after_the_users_own(tmp_path, monkeypatch):
    shipped, _ = small_checkpoint(tmp_path / "shipped-weights" / "srresnet-mse.pt", method="srresnet-mse")
    assert load("srresnet-mse").info["weights"] == str(shipped)  # nothing of the user's: the shipped one

    default, _ = small_checkpoint(tmp_path / "default-weights" / "srresnet-mse.pt", method="srresnet-mse")
    assert load("srresnet-mse").info["weights"] == str(default)  # the default folder (var/weights) wins
    own, _ = small_checkpoint(tmp_path / "mine" / "srresnet-mse.pt", method="srresnet-mse")
    monkeypatch.setenv("SRMOS_WEIGHTS_DIR", str(tmp_path / "mine"))
    assert load("srresnet-mse").info["weights"] == str(own)  # $SRMOS_WEIGHTS_DIR wins
    other = tmp_path / "other"
    other.mkdir()
    assert load("srresnet-mse", weights=own).info["weights"] == str(own)
    # A folder given by name (Django passes SRMOS_WEIGHTS_DIR so) without the method's file: the shipped one.
    assert load("srresnet-mse", weights=other).info["weights"] == str(shipped)
    assert load("srresnet-mse", weights=tmp_path / "not-made-yet").info["weights"] == str(shipped)
    with pytest.raises(WeightsError, match="weights for srresnet-mse not found"):
        load("srresnet-mse", weights=other / "srresnet-mse.pt")  # a file given by name is taken at its word


def test_no_weights_anywhere_says_how_to_provide_them(tmp_path):
    (tmp_path / "shipped-weights").mkdir()
    with pytest.raises(WeightsError) as caught:
        load("srgan-vgg54")
    message = str(caught.value)
    assert message.startswith(
        "method srgan-vgg54 needs trained weights: pass --weights FILE (weights=...) or set "
        "SRMOS_WEIGHTS_DIR to a folder holding srgan-vgg54.pt"
    )
    assert str(tmp_path / "default-weights") in message and str(tmp_path / "shipped-weights") in message


def test_shipped_weights_folder_is_package_data():
    assert PACKAGE_WEIGHTS_DIR == Path(methods.__file__).resolve().parent / "weights"
    readme = (PACKAGE_WEIGHTS_DIR / "README.md").read_text()
    assert readme.startswith("# Shipped weights") and "docs/training.md" in readme


def test_learned_method_refusals(tmp_path):
    with pytest.raises(
        WeightsError,
        match="method srgan-vgg54 needs trained weights: pass --weights FILE "
        r"\(weights=...\) or set SRMOS_WEIGHTS_DIR to a folder holding "
        "srgan-vgg54.pt",
    ):
        load("srgan-vgg54")
    with pytest.raises(WeightsError, match="weights for srgan-vgg54 not found: .*nope.pt does not exist"):
        load("srgan-vgg54", weights=tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_text("hello")
    with pytest.raises(CheckpointError, match="junk.pt is not an srmos checkpoint"):
        load("srgan-vgg54", weights=junk)
    path, _ = small_checkpoint(tmp_path / "mse.pt", method="srresnet-mse")
    with pytest.raises(
        CheckpointError,
        match=r"mse.pt holds srresnet-mse weights, not srgan-vgg54; pass the "
        r"srgan-vgg54 checkpoint, or force it \(--force, force=True\)",
    ):
        load("srgan-vgg54", weights=path)
    assert load("srgan-vgg54", weights=path, force=True).info["method"] == "srresnet-mse"
    save_checkpoint(tmp_path / "d.pt", Discriminator(num_features=8), method="srgan-vgg54", arch="discriminator")
    with pytest.raises(
        CheckpointError, match="d.pt holds a 'discriminator' network; method srgan-vgg54 needs 'srresnet'"
    ):
        load("srgan-vgg54", weights=tmp_path / "d.pt")
    ckpt = torch.load(path, weights_only=True)
    ckpt["state_dict"]["tail.weight"] = torch.zeros(3, 8, 3, 3)
    torch.save(ckpt, tmp_path / "bad_shape.pt")
    with pytest.raises(CheckpointError, match="weights do not fit srresnet.*size mismatch for tail.weight"):
        load("srresnet-mse", weights=tmp_path / "bad_shape.pt")


def test_unknown_method():
    with pytest.raises(
        UnknownMethodError,
        match="unknown method 'srgan'; available: nn, bicubic, srresnet-mse, "
        r".* \(or a plugin given as package.module:callable\)",
    ):
        load("srgan")


class Doubler(Upscaler):
    name, scale = "doubler", 4

    def upscale(self, lr):
        return lr.repeat(4, 0).repeat(4, 1)


def test_register_a_factory():
    register("mine", lambda weights=None, device=None: Doubler())
    assert available()[-1] == "mine"
    assert load("mine").upscale(lr_image()).shape == (24, 20, 3)
    with pytest.raises(SRMOSError, match="method mine is already registered; pass replace=True"):
        register("mine", lambda **kw: Doubler())
    register("mine", lambda **kw: Doubler(), replace=True)
    with pytest.raises(SRMOSError, match="contain no ':'"):
        register("a:b", lambda **kw: Doubler())


PLUGIN = """
import numpy as np
from sr_models.methods import Upscaler, ResizeUpscaler

def upscale(lr):
    return lr.repeat(4, axis=0).repeat(4, axis=1)

def factory(weights=None):
    up = ResizeUpscaler("plugin-bicubic", "bicubic")
    up.weights = weights
    return up

def wrong_size(lr):
    return lr

def not_an_upscaler():
    return 42

instance = ResizeUpscaler("plugin-nn", "nearest")
number = 3
"""


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    (tmp_path / "srmos_plugin_for_tests.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "srmos_plugin_for_tests"
    sys.modules.pop("srmos_plugin_for_tests", None)


def test_plugins_load_functions_factories_and_instances(plugin_module):
    image = lr_image()
    function = load(f"{plugin_module}:upscale")
    assert function.name == f"{plugin_module}:upscale"
    assert np.array_equal(function.upscale(image), image.repeat(4, 0).repeat(4, 1))
    factory = load(f"{plugin_module}:factory", weights="w.pt", device="cpu")
    assert factory.name == "plugin-bicubic" and factory.weights == "w.pt"
    assert load(f"{plugin_module}:instance").name == "plugin-nn"


def test_plugin_errors(plugin_module):
    with pytest.raises(
        SRMOSError,
        match=r"returned a uint8 array of shape \(6, 5, 3\); it must return uint8 of "
        r"shape \(24, 20, 3\)",
    ):
        load(f"{plugin_module}:wrong_size").upscale(lr_image())
    with pytest.raises(SRMOSError, match="not_an_upscaler returned int, not an sr_models Upscaler"):
        load(f"{plugin_module}:not_an_upscaler")
    with pytest.raises(UnknownMethodError, match="number is a int, not a callable or an Upscaler"):
        load(f"{plugin_module}:number")
    with pytest.raises(UnknownMethodError, match=f"{plugin_module} has no 'missing'"):
        load(f"{plugin_module}:missing")
    with pytest.raises(UnknownMethodError, match="plugin no_such_pkg.mod:f: cannot import 'no_such_pkg.mod'"):
        load("no_such_pkg.mod:f")
