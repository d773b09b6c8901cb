"""Fakes of the cloud services the tests cannot reach: the Airbyte API."""
