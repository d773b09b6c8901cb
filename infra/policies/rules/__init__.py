"""Policy rules as plain functions: the policy pack and the tests call the same code."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

Props = Mapping[str, Any]


@dataclass(frozen=True)
class Context:
    """What a rule may know beyond one resource: whether the stack is production."""

    production: bool = False


@dataclass(frozen=True)
class Resource:
    """A declared resource as a stack-level rule sees it."""

    type: str
    name: str
    props: Props


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
    """Every rule of every module in this package (a module per provider: aws, snowflake, ...)."""
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if module.__name__ in _ADAPTED:
            continue
        _ADAPTED.add(module.__name__)
        # A module that registered its rules itself (decorators or REGISTRY calls) is done.
        if not any(_defined_in(rule, module.__name__) for rule in REGISTRY.rules.values()):
            for rule in adapt_module(module):
                REGISTRY.add(rule)
    return list(REGISTRY.rules.values())


def _defined_in(rule: Rule, module: str) -> bool:
    return any(getattr(fn, "__module__", None) == module for fn in (rule.check, rule.stack_check))


_ADAPTED: set[str] = set()


def adapt_module(module: ModuleType) -> list[Rule]:
    """Rules of a module that lists plain functions instead of registering them.

    Such a module exposes `Resource` (built as `Resource(type=..., name=..., props=...)`),
    `RESOURCE_RULES` (functions of one Resource returning messages) and `STACK_RULES`
    (functions of all Resources returning messages), and optionally `SOURCES`, mapping a
    function name to the scanner rules it mirrors.
    """
    if not hasattr(module, "RESOURCE_RULES") and not hasattr(module, "STACK_RULES"):
        return []
    make = module.Resource
    sources: Mapping[str, Sequence[str]] = getattr(module, "SOURCES", {})
    short = module.__name__.rsplit(".", 1)[-1]
    rules: list[Rule] = []

    def describe(fn: Callable[..., Any]) -> tuple[str, str, tuple[str, ...]]:
        name = f"{short}-{fn.__name__.replace('_', '-')}"
        doc = (fn.__doc__ or name).strip().splitlines()[0]
        return name, doc, tuple(sources.get(fn.__name__, (f"mdp: {short}",)))

    for fn in getattr(module, "RESOURCE_RULES", ()):
        name, doc, src = describe(fn)

        def check(t: str, p: Props, c: Context, fn: Callable[..., list[str]] = fn) -> list[str]:
            return list(fn(make(type=t, name=t.rsplit(":", 1)[-1], props=p)))

        rules.append(Rule(name, doc, src, check=check))
    for fn in getattr(module, "STACK_RULES", ()):
        name, doc, src = describe(fn)

        def stack_check(
            resources: Sequence[Resource],
            c: Context,
            fn: Callable[..., list[str]] = fn,
            name: str = name,
        ) -> list[Violation]:
            converted = [make(type=r.type, name=r.name, props=r.props) for r in resources]
            return [Violation(name, "stack", m) for m in fn(converted)]

        rules.append(Rule(name, doc, src, stack_check=stack_check))
    return rules
