"""The publish step: check the marts, then refresh the Parquet exports and the dashboard data."""
