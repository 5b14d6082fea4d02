"""Datasets: the synthetic captioned-faces generator, the three loaders, and the dataset check."""

from t2i.data.check import ScanReport, scan_dataset
from t2i.data.datasets import ImageCaptionDataset
from t2i.data.synthetic import synthesize_dataset

__all__ = ["ImageCaptionDataset", "ScanReport", "scan_dataset", "synthesize_dataset"]
