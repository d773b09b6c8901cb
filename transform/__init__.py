"""The dbt project, and the Python that runs it in-process (`transform.runner`)."""
