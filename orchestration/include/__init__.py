"""Code shared by the DAG, `mdp demo` and the tests: settings, dbt wiring and the pipeline steps."""
