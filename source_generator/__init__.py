"""The dirty-data source generator of data contract sections 1-2."""

from source_generator.config import ChangeRates, DirtRates, GeneratorConfig, TableMix
from source_generator.migrate import PLANS, migrate
from source_generator.simulation import CycleSummary, generate_cycle

__all__ = [
    "PLANS",
    "ChangeRates",
    "CycleSummary",
    "DirtRates",
    "GeneratorConfig",
    "TableMix",
    "generate_cycle",
    "migrate",
]
