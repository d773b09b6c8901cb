"""Policy rules as plain functions: the policy pack and the tests call the same code."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Props = Mapping[str, Any]


def walk_strings(value: Any) -> Iterator[str]:
    """Every string inside nested properties or inputs."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from walk_strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from walk_strings(item)


@dataclass(frozen=True)
class Context:
    """What a rule may know beyond one resource: whether the stack is production."""

    production: bool = False


@dataclass(frozen=True)
class Resource:
    """A declared resource as a stack-level rule sees it: type, name, properties and two options."""

    type: str
    name: str
    props: Props
    protect: bool = False
    # The `role` of the (Snowflake) provider that manages it, when it has an explicit one.
    provider_role: str | None = None


def from_policy_pack(resource: Any) -> Resource:
    """A resource as the policy pack hands it over (pulumi_policy's PolicyResource)."""
    provider = getattr(resource, "provider", None)
    role = provider.props.get("role") if provider is not None else None
    return Resource(
        type=resource.resource_type,
        name=resource.name,
        props=resource.props,
        protect=bool(getattr(resource.opts, "protect", False)),
        provider_role=str(role) if role else None,
    )


@dataclass(frozen=True)
class Violation:
    rule: str
    resource: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.resource}: {self.message}"


ResourceCheck = Callable[[str, Props, Context], list[str]]
StackCheck = Callable[[Sequence[Resource], Context], list[Violation]]


@dataclass(frozen=True)
class Rule:
    """One security or reliability property, with the scanner rules it mirrors."""

    name: str
    description: str
    sources: tuple[str, ...]
    types: tuple[str, ...] = ()
    check: ResourceCheck | None = None
    stack_check: StackCheck | None = None
    severity: str = "high"

    def __call__(
        self, resource_type: str, props: Props, context: Context | None = None
    ) -> list[str]:
        """Violations of this rule by one resource (empty when it passes or does not apply)."""
        if self.check is None or (self.types and resource_type not in self.types):
            return []
        return self.check(resource_type, props, context or Context())

    def on_stack(
        self, resources: Sequence[Resource], context: Context | None = None
    ) -> list[Violation]:
        ctx = context or Context()
        found: list[Violation] = []
        if self.check is not None:
            for r in resources:
                found += [Violation(self.name, r.name, m) for m in self(r.type, r.props, ctx)]
        if self.stack_check is not None:
            found += self.stack_check(resources, ctx)
        return found


@dataclass
class Registry:
    rules: dict[str, Rule] = field(default_factory=dict)

    def add(self, rule: Rule) -> Rule:
        if rule.name in self.rules:
            raise ValueError(f"duplicate policy rule {rule.name}")
        self.rules[rule.name] = rule
        return rule

    def resource_rule(
        self,
        name: str,
        description: str,
        sources: Iterable[str],
        types: Iterable[str],
        severity: str = "high",
    ) -> Callable[[ResourceCheck], Rule]:
        def wrap(fn: ResourceCheck) -> Rule:
            return self.add(
                Rule(name, description, tuple(sources), tuple(types), check=fn, severity=severity)
            )

        return wrap

    def stack_rule(
        self, name: str, description: str, sources: Iterable[str], severity: str = "high"
    ) -> Callable[[StackCheck], Rule]:
        def wrap(fn: StackCheck) -> Rule:
            return self.add(
                Rule(name, description, tuple(sources), stack_check=fn, severity=severity)
            )

        return wrap


REGISTRY = Registry()


def evaluate(resources: Sequence[Resource], context: Context | None = None) -> list[Violation]:
    """Every violation of every registered rule over a whole stack."""
    found: list[Violation] = []
    for rule in all_rules():
        found += rule.on_stack(resources, context)
    return found


def all_rules() -> list[Rule]:
    """Every rule of every module in this package (a module per provider: aws, snowflake, ...).

    Each module registers its rules with the `REGISTRY.resource_rule` and `stack_rule`
    decorators when it is imported.
    """
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return list(REGISTRY.rules.values())
