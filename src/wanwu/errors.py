"""Every error wanwu raises on purpose, outside the HTTP layer (``wanwu.server.errors`` holds
the errors only a request can cause). Each class carries everything every front end needs to
report it alike: a stable ``code``, the HTTP ``http_status`` the server answers with, the
``exit_status`` of the ``wanwu`` command, and a ``summary`` from which the API documentation's
error tables are generated (``wanwu.server.errors.error_responses``). Every kind says what it is
in both languages (``summary`` and ``summary_zh``); a message can come in Chinese too
(``zh=``), and ``text(lang)`` is what a user reads: the API answers in the request's language,
the CLI in ``--lang`` / ``WANWU_LANG`` / the locale's.

How to add an error: subclass the closest class here (or in ``server/errors.py`` if only a
request can cause it), set ``code``, ``http_status``, ``summary``, ``summary_zh`` (and
``exit_status`` if it is a usage error), raise it with a message that says what to do next
(``zh=`` the same in Chinese, for the messages people meet most), and list it in the
``error_responses(...)`` of the routes that can raise it.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and something could not be done
EXIT_USAGE = 2  # the command line or a WANWU_* variable asks for something impossible
EXIT_DISK_FULL = 74  # a disk wanwu writes to is full (sysexits' EX_IOERR); nothing committed was lost
# a temporary failure: the same command run again later can succeed (another process is writing
# the photo catalogue; a Ray worker or node was lost). 75 is EX_TEMPFAIL of BSD's sysexits.h,
# "try again later", as mail and backup tools use it: a script can retry on 75 and on nothing else
EXIT_RETRY = 75


class WanwuError(Exception):
    """Base class: a problem the user can act on (never a bug)."""

    code = "wanwu_error"
    http_status = 400
    exit_status = EXIT_FAILED
    summary = "a problem wanwu reports"
    summary_zh = "wanwu 报告的问题"

    def __init__(self, message: str, *, zh: str | None = None):
        super().__init__(message)
        self.message = message
        self.message_zh = zh  # the same message in Chinese, where the raise site wrote one

    def text(self, lang: str = "en") -> str:
        """The message in ``lang`` (``en`` or ``zh``). Without a Chinese message of its own, the
        Chinese is the kind's ``summary_zh`` with the English details (names, numbers) after it."""
        if lang != "zh":
            return self.message
        return self.message_zh or f"{self.summary_zh}：{self.message}"

    def to_dict(self, lang: str = "en") -> dict[str, str]:
        """The ``{"code", "message"}`` every JSON answer carries for this error."""
        return {"code": self.code, "message": self.text(lang)}


# --- input images -------------------------------------------------------------------------
class ImageInputError(WanwuError):
    """The bytes given as an image cannot be used."""

    code = "bad_image"
    http_status = 422
    summary = "the image cannot be used"
    summary_zh = "图像无法使用"


class EmptyImageError(ImageInputError):
    code = "empty_image"
    http_status = 422
    summary = "empty image"
    summary_zh = "空图像"


class NotAnImageError(ImageInputError):
    code = "not_an_image"
    http_status = 415
    summary = "not an image"
    summary_zh = "不是图像"


class ImageNotFoundError(ImageInputError, FileNotFoundError):
    """A path given as an image does not exist (also a ``FileNotFoundError``)."""

    code = "not_found"
    http_status = 404
    summary = "no such file"
    summary_zh = "没有这个文件"


class UnsupportedFormatError(ImageInputError):
    code = "unsupported_format"
    http_status = 415
    summary = "an image format wanwu does not read"
    summary_zh = "wanwu 不读取的图像格式"


class TruncatedImageError(ImageInputError):
    code = "truncated_image"
    http_status = 422
    summary = "truncated image"
    summary_zh = "图像不完整"


class CorruptImageError(ImageInputError):
    code = "corrupt_image"
    http_status = 422
    summary = "corrupt image"
    summary_zh = "图像已损坏"


class TooManyPixelsError(ImageInputError):
    code = "too_many_pixels"
    http_status = 413
    summary = "more pixels than --max-pixels"
    summary_zh = "像素多于 --max-pixels"


# --- models, weights, engines, settings ---------------------------------------------------
class UnknownModelError(WanwuError):
    code = "unknown_model"
    http_status = 404
    exit_status = EXIT_USAGE
    summary = "unknown model"
    summary_zh = "未知的模型"


class ModelUnavailableError(WanwuError):
    """The model is known but its weights are not on this machine."""

    code = "model_unavailable"
    http_status = 409
    summary = "model known but its weights are missing"
    summary_zh = "模型已知，但缺少它的权重文件"


class WeightsError(WanwuError):
    """A weights file exists but is not usable (wrong checksum, keys or shapes)."""

    code = "bad_weights"
    http_status = 409
    summary = "the weights file is not usable"
    summary_zh = "权重文件无法使用"


class ConfigError(WanwuError):
    """A setting (flag, environment variable or argument) has a value that cannot work."""

    code = "bad_config"
    http_status = 500
    exit_status = EXIT_USAGE
    summary = "a setting has a value that cannot work"
    summary_zh = "某项设置的值行不通"


class EngineError(WanwuError):
    code = "engine_error"
    http_status = 500
    summary = "the inference engine failed or is not installed"
    summary_zh = "推理引擎出错或未安装"


class CacheError(WanwuError):
    """The model cache cannot be written (``wanwu models --prepare`` has nothing to write into)."""

    code = "cache_unwritable"
    http_status = 500
    summary = "the model cache cannot be written"
    summary_zh = "无法写入模型缓存"


class DiskFullError(WanwuError):
    """No space left (or the quota used up) on the disk of the catalogue or the thumbnail cache.
    What was committed before stays: SQLite rolls the failed transaction back."""

    code = "disk_full"
    http_status = 507
    exit_status = EXIT_DISK_FULL
    summary = "no space left on the disk wanwu writes to (the server's log names it)"
    summary_zh = "wanwu 写入的磁盘已满（服务器日志写明是哪个）"


class ThumbnailCacheError(WanwuError):
    """The thumbnail cache beside the catalogue cannot be written (read-only, no permission)."""

    code = "thumbnail_cache_unwritable"
    http_status = 500
    summary = "the thumbnail cache cannot be written (the server's log names it)"
    summary_zh = "无法写入缩略图缓存（服务器日志写明位置）"


class BusyError(WanwuError):
    """Too many images wait for inference (or the batcher is closing): retry shortly."""

    code = "busy"
    http_status = 503
    summary = "too many images waiting"
    summary_zh = "等待识别的图像太多"


# --- class names and languages ------------------------------------------------------------
class UnknownLabelError(WanwuError):
    """No class or label group has the name asked for."""

    code = "unknown_label"
    http_status = 404
    exit_status = EXIT_USAGE
    summary = "no class or label group has this name"
    summary_zh = "没有哪个类别或标签组叫这个名字"


class AmbiguousLabelError(WanwuError):
    """A name that should pick one class (or group) picks several."""

    code = "ambiguous_label"
    http_status = 400
    exit_status = EXIT_USAGE
    summary = "the name fits several classes or groups"
    summary_zh = "这个名字对应多个类别或标签组"


class UnsupportedLanguageError(WanwuError):
    code = "unsupported_language"
    http_status = 400
    exit_status = EXIT_USAGE
    summary = "a language other than en (English) or zh (Chinese)"
    summary_zh = "不支持的语言（只有 en 英文和 zh 中文）"
