"""Every error wanwu raises on purpose. Each carries a stable ``code`` and the HTTP status
the server answers with, so the CLI, the API and the UI report the same problem the same way."""

from __future__ import annotations


class WanwuError(Exception):
    """Base class: a problem the user can act on (never a bug)."""

    code = "wanwu_error"
    http_status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# --- input images -------------------------------------------------------------------------
class ImageInputError(WanwuError):
    """The bytes given as an image cannot be used."""

    code = "bad_image"
    http_status = 422


class EmptyImageError(ImageInputError):
    code = "empty_image"
    http_status = 422


class NotAnImageError(ImageInputError):
    code = "not_an_image"
    http_status = 415


class UnsupportedFormatError(ImageInputError):
    code = "unsupported_format"
    http_status = 415


class TruncatedImageError(ImageInputError):
    code = "truncated_image"
    http_status = 422


class CorruptImageError(ImageInputError):
    code = "corrupt_image"
    http_status = 422


class TooManyPixelsError(ImageInputError):
    code = "too_many_pixels"
    http_status = 413


class ImageTooLargeError(ImageInputError):
    """The encoded file itself (bytes, not pixels) is over the limit."""

    code = "payload_too_large"
    http_status = 413


# --- models and weights -------------------------------------------------------------------
class UnknownModelError(WanwuError):
    code = "unknown_model"
    http_status = 404


class ModelUnavailableError(WanwuError):
    """The model is known but its weights are not on this machine."""

    code = "model_unavailable"
    http_status = 409


class WeightsError(WanwuError):
    """A weights file exists but is not usable (wrong checksum, keys or shapes)."""

    code = "bad_weights"
    http_status = 409


class ConfigError(WanwuError):
    """A setting (flag, environment variable or argument) has a value that cannot work."""

    code = "bad_config"
    http_status = 500


class EngineError(WanwuError):
    code = "engine_error"
    http_status = 500
