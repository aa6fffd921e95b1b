"""Response shapes of the JSON API (they feed ``/openapi.json`` and validate our answers)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorInfo(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. not_an_image, too_many_pixels")
    message: str = Field(description="what went wrong and what to do about it")
    request_id: str | None = Field(None, description="only on 5xx: quote it when reporting the problem")


class ErrorResponse(BaseModel):
    error: ErrorInfo


class V2ErrorResponse(BaseModel):
    """Open Inference Protocol errors are one string."""

    error: str


class Prediction(BaseModel):
    index: int = Field(description="ImageNet-1k class index (0-999)")
    wnid: str = Field(description="WordNet id, e.g. n02123045")
    label: str = Field(description="class name in the language asked for, e.g. tabby or 虎斑猫")
    label_en: str = Field(description="English class name, e.g. tabby")
    label_zh: str = Field(description="Chinese class name, e.g. 虎斑猫")
    score: float = Field(description="softmax probability, 0-1")


class Verdict(BaseModel):
    """The tag policy's headline for the image (docs/library.md): one class where the model is
    sure, a label group where it hesitates between its classes, or none. Added beside the raw
    ``predictions``, which stay the model's answer."""

    kind: str = Field(description="class, group or none (the policy is unsure)")
    wnid: str | None = Field(None, description="the class, when kind is class")
    group: str | None = Field(None, description="the label group's key (e.g. cat), when kind is group")
    label: str | None = Field(None, description="the class or group name in the language asked for")
    label_en: str | None = None
    label_zh: str | None = None
    score: float | None = Field(None, description="calibrated probability (a group's: summed over its classes)")
    text: str = Field(description="the headline for people: 'probably a cat (93%)', 'unsure', '可能是猫（93%）'")
    withheld: list[str] = Field(
        default_factory=list,
        description="sensitive classes (primates, underwear ...) among the predictions that are not the "
        "verdict: a page showing the predictions to people leaves them out",
    )


class Timing(BaseModel):
    decode: float
    preprocess: float
    inference: float
    postprocess: float
    total: float


class ImageOut(BaseModel):
    filename: str
    width: int | None = Field(None, description="as displayed (after EXIF rotation), in pixels")
    height: int | None = None
    cached: bool | None = Field(None, description="answered from the result cache (only with --show-cache-hits)")
    predictions: list[Prediction] | None = Field(None, description="best first; absent when error is set")
    verdict: Verdict | None = Field(None, description="the tag policy's headline; absent when error is set")
    timing_ms: Timing | None = None
    error: ErrorInfo | None = Field(None, description="set instead of predictions when this image failed")
    warnings: list[str] | None = Field(
        None, description="the image was used, but the answer may mean little (e.g. under 64 px on a side)"
    )


class ClassifyResponse(BaseModel):
    model: str
    engine: str
    precision: str
    lang: str = Field(description="language of each prediction's label: en or zh")
    results: list[ImageOut]


class CropBox(BaseModel):
    left: float
    top: float
    right: float
    bottom: float


class ExplainOut(BaseModel):
    filename: str
    width: int | None = Field(None, description="as displayed (after EXIF rotation), in pixels")
    height: int | None = None
    predictions: list[Prediction] | None = Field(None, description="best first; absent when error is set")
    target: Prediction | None = Field(None, description="the class the heatmap is for (default: the top-1 class)")
    crop: CropBox | None = Field(None, description="the part of the image the model sees (its center crop), in pixels")
    heatmap: list[list[float]] | None = Field(
        None,
        description="where the model found the target class: rows top to bottom covering the whole image "
        "(longer side 64 cells), values 0-1, 0 outside the crop",
    )
    timing_ms: Timing | None = None
    error: ErrorInfo | None = Field(None, description="set instead of the rest when this image failed")


class ExplainResponse(BaseModel):
    model: str
    engine: str
    precision: str
    results: list[ExplainOut]


class ModelInfo(BaseModel):
    name: str
    title: str
    available: bool
    reason: str | None = Field(description="why it is unavailable and how to get its weights")
    top1: float | None = Field(description="published ImageNet-1k top-1 accuracy, %")
    params_m: float | None = Field(description="parameters, millions")
    input_size: int
    size_mb: float | None = Field(description="weights file size, MB")
    loaded: bool = Field(description="in memory in this server process")


class ModelsResponse(BaseModel):
    default: str
    models: list[ModelInfo]
