"""The EC2 hosts: the generator/bastion, the Airflow host and MWAA's dashboard host, deployed by cloud-init."""

from infra.hosts.airflow import AirflowHost, AirflowHostArgs, AirflowSettings, DashboardArgs
from infra.hosts.dashboard import DashboardHost, DashboardHostArgs, DashboardHostSettings
from infra.hosts.generator import GeneratorHost, GeneratorHostArgs, GeneratorSettings
from infra.hosts.instance import HostCommon, HostSettings

__all__ = [
    "AirflowHost",
    "AirflowHostArgs",
    "AirflowSettings",
    "DashboardArgs",
    "DashboardHost",
    "DashboardHostArgs",
    "DashboardHostSettings",
    "GeneratorHost",
    "GeneratorHostArgs",
    "GeneratorSettings",
    "HostCommon",
    "HostSettings",
]
