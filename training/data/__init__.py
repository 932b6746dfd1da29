"""Data: format readers, the processing pipeline, the cache and synthetic data sets."""

from training.data.dataset import SequenceDataset, Split
from training.data.errors import DataFormatError
from training.data.load import load_dataset, load_run_data

__all__ = ["DataFormatError", "SequenceDataset", "Split", "load_dataset", "load_run_data"]
