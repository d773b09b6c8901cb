"""Turns config validation errors into issues that name the key and the `pulumi config set` fix."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pydantic import BaseModel, SecretStr, ValidationError

from infra.sections import PROJECT

ConfigReader = Callable[[str, str], Any]
"""Reads `namespace`, `key` and returns the decoded value (objects as dicts) or None."""

Loc = Sequence[str | int]


@dataclass(frozen=True)
class ConfigIssue:
    """One bad or missing key, and the command that fixes it."""

    key: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"  - {self.key}: {self.problem}\n    fix: {self.fix}"


class ConfigError(pulumi.RunError):
    """Stack config is invalid; raised before any resource is declared."""

    def __init__(self, stack: str, issues: Sequence[ConfigIssue]) -> None:
        self.stack = stack
        self.issues = tuple(issues)
        lines = "\n".join(str(i) for i in self.issues)
        super().__init__(
            f"Stack config for '{stack}' is invalid, so no resource was declared and nothing "
            f"in the cloud changed:\n{lines}\nFix the keys above, then run "
            f"`pulumi preview --stack {stack}` again."
        )


@dataclass(frozen=True)
class Fixes:
    """Names the key and the fix command of an error located in the config model `root`.

    `provider_keys` maps a location in `root` to a key another provider owns (`aws:region`)
    and an example value for it.
    """

    root: type[BaseModel]
    stack: str
    provider_keys: Mapping[tuple[str, ...], tuple[str, str]] = field(default_factory=dict)

    def key_and_fix(
        self, loc: Loc, example: str | None = None, *, secret: bool = False
    ) -> tuple[str, str]:
        """The key's full name and the `pulumi config set` that fixes it (`--secret` for secrets)."""
        command = "pulumi config set --secret" if secret else "pulumi config set"
        provider_key = self.provider_keys.get(tuple(str(p) for p in loc))
        if provider_key is not None:
            key, default = provider_key
            return key, f"{command} {key} {example or default} --stack {self.stack}"
        owner, name = _model_at(self.root, loc)
        if name is not None and owner is not None:
            info = owner.model_fields[name]
            if isinstance(loc[-1], str) and _is_sequence(info.annotation):
                loc = (*loc, 0)
        path = _path(loc)
        value = example if example is not None else _example(self.root, loc)
        return (
            f"{PROJECT}:{path}",
            f"{command} --path '{path}' {value} --stack {self.stack}",
        )

    def issues(self, error: ValidationError) -> list[ConfigIssue]:
        """One issue per validation error: unknown keys, missing keys and bad values."""
        issues: list[ConfigIssue] = []
        for err in error.errors():
            loc: tuple[str | int, ...] = tuple(err["loc"])
            if err["type"] == "extra_forbidden":
                issues.append(self._unknown_key(loc))
                continue
            secret = self._is_secret(loc)
            key, fix = self.key_and_fix(loc, secret=secret)
            if err["type"] == "missing":
                problem = "is required but not set"
            else:
                got = err.get("input")
                shown = json.dumps(got) if isinstance(got, str | int | float | bool) else None
                if secret:
                    shown = None  # a secret value is never repeated in an error
                problem = err["msg"].removeprefix("Value error, ") + (
                    f" (got {shown})" if shown else ""
                )
            issues.append(ConfigIssue(key=key, problem=problem, fix=fix))
        return issues

    def _is_secret(self, loc: Loc) -> bool:
        owner, name = _model_at(self.root, loc)
        if owner is None or name is None:
            return False
        annotation = owner.model_fields[name].annotation
        return SecretStr in (annotation, *getattr(annotation, "__args__", ()))

    def _unknown_key(self, loc: Loc) -> ConfigIssue:
        model = _model_for(self.root, loc[:-1])
        known = [info.alias or name for name, info in model.model_fields.items()] if model else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        path = _path(loc)
        return ConfigIssue(
            key=f"{PROJECT}:{path}",
            problem=f"unknown key{hint}",
            fix=f"pulumi config rm --path '{path}' --stack {self.stack}",
        )


def _path(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _model_at(root: type[BaseModel], loc: Loc) -> tuple[type[BaseModel] | None, str | None]:
    """The model owning the last named field of `loc`, and that field's Python name."""
    model: type[BaseModel] | None = root
    owner: type[BaseModel] | None = None
    name: str | None = None
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        found = _python_name(model, part)
        if found is None:
            return model, None
        owner, name = model, found
        model = _submodel(model.model_fields[found].annotation)
    return owner, name


def _model_for(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model whose fields live at `loc`."""
    model: type[BaseModel] | None = root
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        name = _python_name(model, part)
        model = _submodel(model.model_fields[name].annotation) if name else None
    return model


def _python_name(model: type[BaseModel], key: str) -> str | None:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return name
    return None


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _example(root: type[BaseModel], loc: Loc) -> str:
    owner, name = _model_at(root, loc)
    if owner is None or name is None:
        return "<value>"
    examples = owner.model_fields[name].examples or []
    if not examples:
        return "<value>"
    value = examples[0]
    if isinstance(loc[-1], int) and isinstance(value, list):
        value = value[loc[-1]] if loc[-1] < len(value) else value[0]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if not isinstance(value, list) else str(value[0])


def _is_sequence(annotation: Any) -> bool:
    origin = getattr(annotation, "__origin__", None)
    return origin in (tuple, list)
