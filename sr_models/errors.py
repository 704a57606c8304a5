"""Errors a user can cause. Each message says what was wrong and how to put it right."""


class SRMOSError(ValueError):
    """Base class for every user-facing srmos error."""


class ImageError(SRMOSError):
    """An image file that cannot be read: missing, corrupt, truncated, of an unsupported kind or too large."""


class UnknownMethodError(SRMOSError):
    """A method name that is neither registered nor an importable plugin."""


class WeightsError(SRMOSError):
    """Weights that are needed but absent, or that do not fit the network."""


class CheckpointError(WeightsError):
    """A checkpoint file that is not an srmos checkpoint or does not match the method asked for."""


class UnknownMetricError(SRMOSError):
    """A quality metric name that is not registered, or one srmos cannot compute (its error says why)."""


class MissingExtraError(SRMOSError):
    """A quality metric whose library is not installed: the message names the install extra that brings it."""
