"""Airflow orchestration of the daily pipeline: sync, then transform, then publish."""
