"""Data layer: readers -> one dataset index -> decode-once cache -> streamed batches."""

from kerascv_emotion.data.index import DatasetIndex, IndexRecord, read_index

__all__ = ["DatasetIndex", "IndexRecord", "read_index"]
