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

MAX_PERSON_NAME = 100  # characters in a person's name (the CLI and the API)


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


# --- photo library: files, catalogue, sidecars, similar photos, people ---------------------------
class UnreadableFileError(ImageInputError):
    code = "unreadable"
    http_status = 422
    summary = "the file cannot be read (permissions, an I/O error, gone while reading)"
    summary_zh = "文件无法读取（权限、读写错误，或读取时已不在）"


class FileTooLargeError(ImageInputError):
    code = "file_too_large"
    http_status = 413
    summary = "the file is larger than --max-file-mb"
    summary_zh = "文件大于 --max-file-mb"


class NotARegularFileError(ImageInputError):
    code = "not_a_regular_file"
    http_status = 422
    summary = "not a regular file (a FIFO, device or socket): never read"
    summary_zh = "不是普通文件（FIFO、设备或套接字）：从不读取"


class LibraryError(WanwuError):
    code = "library_error"
    summary = "a problem with the photo catalogue"
    summary_zh = "照片相册的问题"
    http_status = 409


class LibraryBusyError(LibraryError):
    code = "library_busy"
    exit_status = EXIT_RETRY  # not 1 ("some files failed"): nothing was tried; run it again later
    summary = "another process is writing the photo catalogue"
    summary_zh = "另一个进程正在写入照片相册"


class NoEmbeddingsError(LibraryError):
    code = "no_embeddings"
    http_status = 409
    summary = "the catalogue has no embeddings yet; run `wanwu index` on your photos"
    summary_zh = "相册还没有特征向量；请对照片运行 `wanwu index`"


class PhotoNotEmbeddedError(LibraryError):
    code = "photo_not_embedded"
    http_status = 404
    summary = "the photo has no embedding of the catalogue's model"
    summary_zh = "这张照片没有相册所用模型的特征向量"


class PhotoNotFoundError(WanwuError):
    code = "photo_not_found"
    http_status = 404
    summary = "no photo with this id in the catalogue"
    summary_zh = "相册中没有这个编号的照片"


class PhotoGoneError(WanwuError):
    code = "photo_gone"
    http_status = 410
    summary = "the photo is in the catalogue but its file is gone or unreadable (re-run wanwu index)"
    summary_zh = "照片在相册中，但文件已不在或无法读取（请重新运行 wanwu index）"


class NotServedError(WanwuError):
    """Why the server will not send a catalogued photo's file; ``code``/``http_status`` per case."""

    code = "photo_not_served"
    http_status = 404
    summary = "the photo's file now leads outside the library's folders or is not a regular file"
    summary_zh = "照片文件现在指向相册文件夹之外，或不是普通文件"


class PhotoChangedError(WanwuError):
    code = "photo_changed"
    http_status = 410
    summary = "the photo's file is no longer the catalogued content (re-run wanwu index)"
    summary_zh = "照片文件已不是编入相册时的内容（请重新运行 wanwu index）"


class SidecarError(WanwuError):
    """A sidecar left alone or not written; the message names the photo and the sidecar."""

    code = "sidecar_error"
    http_status = 500
    summary = "an XMP sidecar was left alone or could not be written"
    summary_zh = "XMP 附属文件未改动或无法写入"

    def __init__(self, photo: str, sidecar: str, problem: str, *, disk_full: bool = False):
        super().__init__(f"{photo}: {sidecar} {problem}")
        self.photo, self.sidecar, self.disk_full = photo, sidecar, disk_full


class PersonNotFoundError(WanwuError):
    code = "person_not_found"
    http_status = 404
    summary = "no such person or face"
    summary_zh = "没有这个人或这张脸"


class PersonNameError(ConfigError):
    code = "bad_person_name"
    http_status = 422
    summary = f"a person's name must not be empty, longer than {MAX_PERSON_NAME} characters, nor contain '|' or control characters"
    summary_zh = f"人名不能为空，不能超过 {MAX_PERSON_NAME} 个字符，也不能含有“|”或控制字符"


class PersonNameTakenError(WanwuError):
    code = "person_name_taken"
    http_status = 409
    summary = "another person already has that name"
    summary_zh = "另一个人已经用了这个名字"


# --- optional parts: faces, a Ray cluster --------------------------------------------------------
class FacesUnavailableError(ConfigError):
    code = "faces_unavailable"
    summary_zh = "未安装人脸扩展（faces）"
    summary = "the faces extra is not installed"


class RayWorkerLostError(EngineError):
    """A Ray worker process, raylet or node died under the job (killed, out of memory, a
    machine gone). The job ends there; what reached the catalogue is kept."""

    code = "ray_worker_lost"
    exit_status = EXIT_RETRY  # the same command goes on where this one stopped
    summary = "a Ray worker or node died during the job"
    summary_zh = "任务进行中一个 Ray 工作进程或节点失效"
