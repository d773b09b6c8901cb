"""Tests of the Parquet exports."""
