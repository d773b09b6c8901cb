"""Parquet exports of the marts: zstd-compressed, Hive-partitioned, replaced atomically."""

from exports.writer import ExportResult, TableExport, export_marts

__all__ = ["ExportResult", "TableExport", "export_marts"]
