"""CloudFormation intrinsic functions over a synthesized assembly, resolved to the resources the rehearsal created.

`Resolver.resolve(stack, value)` walks a template value and replaces Ref, Fn::GetAtt, Fn::Join, Fn::Sub,
Fn::Select, Fn::Split, Fn::ImportValue, Fn::GetStackOutput (CDK's weak cross-stack references), Fn::Base64 and the
pseudo parameters. What a Ref or GetAtt means is asked of a `Physical` callback (the data plane), which creates the
resource in moto on first use; so resources come up in the order their references need them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

NO_VALUE = object()  # AWS::NoValue: the property or list item is left out


class UnresolvedError(LookupError):
    """A reference the rehearsal cannot resolve (names the stack, the resource and the attribute)."""


# (stack name, logical id, attribute or None for Ref) -> value
Physical = Callable[[str, str, str | None], Any]


class Resolver:
    def __init__(self, assembly, physical: Physical) -> None:
        self._assembly = assembly
        self._physical = physical

    def pseudo(self, stack: str, name: str) -> Any:
        env = self._assembly.stack(stack).environment
        values = {
            "AWS::Region": env.region,
            "AWS::AccountId": env.account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack,
            # A stack id ends with a UUID (templates cut suffixes out of it): a fixed one per stack name.
            "AWS::StackId": f"arn:aws:cloudformation:{env.region}:{env.account}:stack/{stack}/"
                            f"{uuid.uuid5(uuid.NAMESPACE_URL, stack)}",
            "AWS::NoValue": NO_VALUE,
        }
        if name not in values:
            raise UnresolvedError(f"{stack}: unknown pseudo parameter {name}")
        return values[name]

    def resolve(self, stack: str, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(stack, item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.pseudo(stack, arg) if arg.startswith("AWS::") else self._physical(stack, arg, None)
            if key == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self._physical(stack, logical, self.resolve(stack, attribute))
            if key == "Fn::Join":
                separator, items = arg
                return separator.join(str(item) for item in self.resolve(stack, items))
            if key == "Fn::Select":
                index, items = self.resolve(stack, arg)
                return items[int(index)]
            if key == "Fn::Split":
                separator, text = arg
                return str(self.resolve(stack, text)).split(separator)
            if key == "Fn::Sub":
                return self._sub(stack, arg)
            if key == "Fn::Base64":
                import base64

                return base64.b64encode(str(self.resolve(stack, arg)).encode()).decode()
            if key == "Fn::ImportValue":
                return self._assembly.export(self.resolve(stack, arg), self)
            if key == "Fn::GetStackOutput":
                return self._assembly.output(arg["StackName"], arg["OutputName"], self)
            if key.startswith("Fn::"):
                raise UnresolvedError(f"{stack}: intrinsic {key} is not supported by the rehearsal")
        resolved = {k: self.resolve(stack, v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _sub(self, stack: str, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(stack, arg[1]))

        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if name.startswith("AWS::"):
                return str(self.pseudo(stack, name))
            if "." in name:
                logical, attribute = name.split(".", 1)
                return str(self._physical(stack, logical, attribute))
            return str(self._physical(stack, name, None))

        return re.sub(r"\$\{([^}]+)\}", replace, text)
