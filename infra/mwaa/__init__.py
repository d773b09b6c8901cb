"""Amazon MWAA: the managed, distributed Airflow the prod stack runs its DAG on."""
