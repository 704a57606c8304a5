"""The method registry: a name maps to an ``Upscaler`` that turns an LR uint8 image into its x4 uint8 image.

Built in (the SRGAN paper's variants): ``nn`` and ``bicubic`` (MATLAB ``imresize``, no weights) and the learned
``srresnet-mse``, ``srresnet-vgg22``, ``srgan-mse``, ``srgan-vgg22``, ``srgan-vgg54``, which load an srmos checkpoint
(sr_models.checkpoint). Weights are found as: the ``weights`` argument (a checkpoint file, or a folder holding
``<name>.pt``), else ``<name>.pt`` in ``$SRMOS_WEIGHTS_DIR`` (default ``<repository>/var/weights``, see
``sr_models.paths``), else the inference-only checkpoint shipped as package data in ``sr_models/weights/<name>.pt``
(``SHIPPED_WEIGHTS_DIR``) where there is one: a user's own weights always win (``find_weights``).

Plugins: ``register(name, factory)``, or ``load("package.module:callable")``. A plugin callable with one required
positional argument is an upscale function (LR uint8 array -> x4 uint8 array); one with no required argument is a
factory, called with the ``weights``/``device`` keywords it accepts, that returns an ``Upscaler``.
"""

import importlib
import inspect
from pathlib import Path

import numpy as np
import torch

from .checkpoint import build_generator, load_checkpoint
from .errors import CheckpointError, SRMOSError, UnknownMethodError, WeightsError
from .inference import DEFAULT_TILE_OVERLAP, fuse_for_inference, resolve_device, split_image, upscale_batch
from .paths import WEIGHTS_DIR_ENV, weights_dir
from .resize import imresize

SHIPPED_WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"  # package data: inference-only checkpoints
RESIZE_METHODS = {"nn": "nearest", "bicubic": "bicubic"}
LEARNED_METHODS = ("srresnet-mse", "srresnet-vgg22", "srgan-mse", "srgan-vgg22", "srgan-vgg54")
VGG_METHODS = ("srresnet-vgg22", "srgan-vgg22", "srgan-vgg54")  # trained with ImageNet VGG19 features


class Upscaler:
    """Something that upscales LR uint8 images (HxW, HxWx3 or HxWx4) by ``scale``."""

    name = "upscaler"
    scale = 4
    needs_weights = False

    def upscale(self, lr: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def upscale_many(self, images):
        return [self.upscale(image) for image in images]

    def __repr__(self):
        return f"<{type(self).__name__} {self.name} x{self.scale}>"


class ResizeUpscaler(Upscaler):
    """MATLAB ``imresize`` (nearest or bicubic) by ``scale``."""

    def __init__(self, name, method, scale=4):
        self.name, self.method, self.scale = name, method, scale

    def upscale(self, lr):
        split_image(lr)  # the same input checks as the networks
        return imresize(lr, scale=self.scale, method=self.method)


class NetworkUpscaler(Upscaler):
    """A generator network, fused for inference, on one device; ``info`` says where its weights came from."""

    needs_weights = True

    def __init__(self, name, model, *, device=None, tile=None, tile_overlap=DEFAULT_TILE_OVERLAP, info=None):
        if (tile is not None and tile < 0) or tile_overlap < 0:
            raise SRMOSError(f"tile ({tile}) and tile overlap ({tile_overlap}) must not be negative")
        self.name = name
        self.device = resolve_device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = fuse_for_inference(model).to(self.device)
        self.scale = getattr(model, "scale", 4)
        self.tile, self.tile_overlap = tile, tile_overlap
        self.info = info or {}

    def upscale(self, lr):
        return self.upscale_many([lr])[0]

    def upscale_many(self, images):
        return upscale_batch(self.model, images, device=self.device, tile=self.tile, tile_overlap=self.tile_overlap)


class FunctionUpscaler(Upscaler):
    """A plugin function LR -> HR, with its output checked."""

    def __init__(self, name, function, scale=4):
        self.name, self.function, self.scale = name, function, scale

    def upscale(self, lr):
        split_image(lr)
        hr = np.asarray(self.function(lr))
        expected = (lr.shape[0] * self.scale, lr.shape[1] * self.scale) + lr.shape[2:]
        if hr.dtype != np.uint8 or hr.shape != expected:
            raise SRMOSError(
                f"plugin {self.name} returned a {hr.dtype} array of shape {hr.shape}; "
                f"it must return uint8 of shape {expected} (x{self.scale} of its input)"
            )
        return hr


def weights_path_for(name, weights_dir) -> Path:
    """The weights-folder convention: ``<weights_dir>/<name>.pt``."""
    return Path(weights_dir) / f"{name}.pt"


def find_weights(name, weights=None) -> Path:
    """The checkpoint file for a learned method: ``weights`` when it is a file; else ``<name>.pt`` in the folder
    ``weights`` (default: ``$SRMOS_WEIGHTS_DIR`` or ``<repository>/var/weights``), else the shipped
    ``sr_models/weights/<name>.pt``. A user's own file always wins over the shipped one."""
    given = Path(weights) if weights is not None else None
    # A folder that does not exist yet (a fresh var/weights) holds nothing of the user's: the shipped file serves.
    # Checkpoint files have a suffix (.pt, .pth); a path without one is taken as a folder.
    is_folder = given is not None and (given.is_dir() or (not given.exists() and not given.suffix))
    if given is not None and not is_folder:
        if not given.is_file():
            raise WeightsError(f"weights for {name} not found: {given} does not exist")
        return given
    folder = given or weights_dir()
    for path in (weights_path_for(name, folder), weights_path_for(name, SHIPPED_WEIGHTS_DIR)):
        if path.is_file():
            return path
    raise WeightsError(
        f"method {name} needs trained weights: pass --weights FILE (weights=...) or set "
        f"{WEIGHTS_DIR_ENV} to a folder holding {name}.pt (looked in {folder} and in the checkpoints "
        f"shipped with srmos, {SHIPPED_WEIGHTS_DIR})"
    )


def train_command(name):
    """The command that would train a learned method's weights (the paper's recipe, as presets/ hold it)."""
    command = f"python -m sr_models train --preset {name} --data HR_IMAGES_DIR"
    if name.startswith("srgan"):
        command += " --init runs/srresnet-mse/checkpoints/best.pt"
    if name in VGG_METHODS:
        command += " --vgg-weights vgg19-dcbb9e9d.pth"
    return command


def weights_note(name) -> str:
    """One line on where a method's weights come from, for ``python -m benchmarks list`` and the quick start."""
    if name not in LEARNED_METHODS:
        return "no weights needed" if name in RESIZE_METHODS else "plugin"
    try:
        path = find_weights(name)
    except WeightsError:
        if name in VGG_METHODS:
            return f"code only until ImageNet VGG19 weights are at hand; then: {train_command(name)}"
        return f"no weights yet; train them: {train_command(name)}"
    provenance = load_checkpoint(path)["provenance"]
    label = provenance.get("label") or f"{provenance.get('training_steps', '?')} updates"
    shipped = " (shipped with srmos)" if path.parent == SHIPPED_WEIGHTS_DIR else ""
    return f"{label}{shipped}: {path}"


def load_network(name, weights=None, device=None, *, force=False, arch="srresnet", **options):
    """A NetworkUpscaler from the checkpoint for ``name``; refuses a checkpoint made for another method
    (unless ``force``), another architecture, or with weights that do not fit."""
    path = find_weights(name, weights)
    checkpoint = load_checkpoint(path)
    if checkpoint["arch"] != arch:
        raise CheckpointError(f"{path} holds a {checkpoint['arch']!r} network; method {name} needs {arch!r}")
    if checkpoint["method"] != name and not force:
        raise CheckpointError(
            f"{path} holds {checkpoint['method']} weights, not {name}; pass the {name} "
            "checkpoint, or force it (--force, force=True) to use these weights anyway"
        )
    model = build_generator(checkpoint)
    info = {
        "weights": str(path),
        "method": checkpoint["method"],
        "step": checkpoint["step"],
        "provenance": checkpoint["provenance"],
    }
    return NetworkUpscaler(name, model, device=device, info=info, **options)


_REGISTRY = {}


def register(name, factory, *, replace=False):
    """Add a method: ``factory(weights=None, device=None, **options) -> Upscaler``."""
    if not name or ":" in name:
        raise SRMOSError(f"method names must be non-empty and contain no ':' (that marks plugins): {name!r}")
    if name in _REGISTRY and not replace:
        raise SRMOSError(f"method {name} is already registered; pass replace=True to replace it")
    _REGISTRY[name] = factory


def available() -> list:
    """Registered method names: the paper's variants first, then plugins in registration order."""
    return list(_REGISTRY)


def load(name, weights=None, device=None, **options) -> Upscaler:
    """The Upscaler for a registered name or a ``package.module:callable`` plugin.

    Learned methods take ``force`` (accept another method's checkpoint), ``tile`` and ``tile_overlap``.
    """
    if name in _REGISTRY:
        return _REGISTRY[name](weights=weights, device=device, **options)
    if ":" in name:
        return _load_plugin(name, weights, device, options)
    raise UnknownMethodError(
        f"unknown method {name!r}; available: {', '.join(available())} (or a plugin given as package.module:callable)"
    )


def _load_plugin(spec, weights, device, options):
    module_name, _, attribute = spec.partition(":")
    try:
        target = importlib.import_module(module_name)
    except ImportError as error:
        raise UnknownMethodError(f"plugin {spec}: cannot import {module_name!r} ({error})") from None
    try:
        for part in attribute.split("."):
            target = getattr(target, part)
    except AttributeError:
        raise UnknownMethodError(f"plugin {spec}: {module_name} has no {attribute!r}") from None
    if isinstance(target, Upscaler):
        return target
    if not callable(target):
        raise UnknownMethodError(f"plugin {spec} is a {type(target).__name__}, not a callable or an Upscaler")
    if _takes_one_argument(target):
        return FunctionUpscaler(spec, target)
    accepted = _accepted_keywords(target, dict(weights=weights, device=device, **options))
    upscaler = target(**accepted)
    if not isinstance(upscaler, Upscaler):
        raise SRMOSError(f"plugin factory {spec} returned {type(upscaler).__name__}, not an sr_models Upscaler")
    return upscaler


def _takes_one_argument(function):
    """True for an upscale function f(lr), False for a factory (no required positional argument) or a class."""
    if isinstance(function, type):
        return False
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [p for p in parameters if p.kind in positional and p.default is inspect.Parameter.empty]
    return len(required) == 1


def _accepted_keywords(function, keywords):
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return {k: v for k, v in keywords.items() if v is not None}
    return {k: v for k, v in keywords.items() if k in parameters and v is not None}


def _resize_factory(name):
    def factory(weights=None, device=None, **options):
        return ResizeUpscaler(name, RESIZE_METHODS[name])

    return factory


def _network_factory(name):
    def factory(weights=None, device=None, **options):
        return load_network(name, weights, device, **options)

    return factory


for _name in RESIZE_METHODS:
    register(_name, _resize_factory(_name))
for _name in LEARNED_METHODS:
    register(_name, _network_factory(_name))
