"""The shape every component of the stack shares: a type token, a name and its arguments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar

import pulumi

ArgsT = TypeVar("ArgsT")


class Component(pulumi.ComponentResource, Generic[ArgsT]):
    """A component resource declared as `TYPE`, whose children `_declare` declares.

    It keeps its name and arguments (as `_name` and `_args`) for the helpers that declare its
    children, and registers the outputs `_declare` returns.
    """

    TYPE: ClassVar[str]

    def __init__(self, name: str, args: ArgsT, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(self.TYPE, name, None, opts)
        self._name = name
        self._args = args
        self.register_outputs(dict(self._declare(name, args)))

    def _declare(self, name: str, args: ArgsT) -> Mapping[str, Any]:
        """Declare the children; return the outputs to register."""
        raise NotImplementedError
