"""The EC2 hosts: the generator/bastion and the Airflow host, both deployed by cloud-init."""

from infra.hosts.airflow import AirflowHost, AirflowHostArgs, AirflowSettings, DashboardArgs
from infra.hosts.generator import GeneratorHost, GeneratorHostArgs, GeneratorSettings
from infra.hosts.instance import HostCommon, HostSettings

__all__ = [
    "AirflowHost",
    "AirflowHostArgs",
    "AirflowSettings",
    "DashboardArgs",
    "GeneratorHost",
    "GeneratorHostArgs",
    "GeneratorSettings",
    "HostCommon",
    "HostSettings",
]
