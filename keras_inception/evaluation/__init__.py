"""Evaluation as in the paper: crop schemes (single, 10, 12, 144), ensembles averaging softmax
probabilities, and top-1/top-5 error reports."""

from keras_inception.evaluation.crops import (
    GOOGLENET_SCALES,
    SCHEMES,
    CentralCrop,
    CornerCrops,
    CropBox,
    CropScheme,
    GoogLeNetCrops,
    crop,
    get_scheme,
)
from keras_inception.evaluation.ensemble import Ensemble, Member
from keras_inception.evaluation.metrics import (
    EvaluationResult,
    evaluate,
    markdown_table,
    write_csv,
)

__all__ = [
    "GOOGLENET_SCALES",
    "SCHEMES",
    "CentralCrop",
    "CornerCrops",
    "CropBox",
    "CropScheme",
    "EvaluationResult",
    "Ensemble",
    "GoogLeNetCrops",
    "Member",
    "crop",
    "evaluate",
    "get_scheme",
    "markdown_table",
    "write_csv",
]
