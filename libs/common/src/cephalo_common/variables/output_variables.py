"""Output variables (§1.7): what one step publishes for the steps after it.

A script on machine `Web01` in step `Deploy` setting `Url` publishes, in both spellings:

- `Cephalo.Action[Deploy].Output[Web01].Url`, unscoped: that machine's value, by name;
- `Cephalo.Action[Deploy].Output.Url` scoped to `Web01`: what later steps on Web01 read;
- `Cephalo.Action[Deploy].Output.Url`, unscoped: the last value captured by any machine.
"""

from __future__ import annotations

from dataclasses import dataclass

from cephalo_common.variables.ast import fold
from cephalo_common.variables.scopes import ScopeField, VariableValue
from cephalo_common.variables.system_variables import CEPHALO, OCTOPUS, SYSTEM_SOURCE


def _check_index(kind: str, text: str) -> None:
    if not text.strip() or "[" in text or "]" in text:
        raise ValueError(f"{kind} {text!r} cannot be used in a variable index (empty or brackets)")


def output_variable_name(
    step: str, name: str, machine: str | None = None, *, prefix: str = CEPHALO
) -> str:
    """`Cephalo.Action[Step].Output.Name`, or per machine `….Output[Machine].Name`."""
    _check_index("step name", step)
    if machine is not None:
        _check_index("machine name", machine)
    where = f"Output[{machine}]" if machine is not None else "Output"
    return f"{prefix}.Action[{step}].{where}.{name}"


@dataclass(frozen=True, slots=True)
class _Captured:
    step: str
    name: str
    value: str
    machine: str | None
    machine_id: str | None
    sensitive: bool


class OutputVariables:
    """Output variables captured so far in one deployment, as resolution candidates."""

    def __init__(self) -> None:
        self._per_machine: dict[tuple[str, str, str], _Captured] = {}
        self._latest: dict[tuple[str, str], _Captured] = {}

    def record(
        self,
        step: str,
        name: str,
        value: str,
        *,
        machine: str | None = None,
        machine_id: str | None = None,
        sensitive: bool = False,
    ) -> None:
        """Capture one `setVariable`; `machine_id` (default: the name) is the scope id."""
        output_variable_name(step, name, machine)
        captured = _Captured(step, name, value, machine, machine_id or machine, sensitive)
        if machine is not None:
            self._per_machine[(fold(step), fold(name), fold(machine))] = captured
        self._latest[(fold(step), fold(name))] = captured

    def values(self) -> list[VariableValue]:
        result: list[VariableValue] = []
        for prefix in (CEPHALO, OCTOPUS):
            for captured in self._per_machine.values():
                assert captured.machine is not None and captured.machine_id is not None
                per_machine = output_variable_name(
                    captured.step, captured.name, captured.machine, prefix=prefix
                )
                shared = output_variable_name(captured.step, captured.name, prefix=prefix)
                result.append(self._value(per_machine, captured, {}))
                scope = {ScopeField.MACHINE: frozenset({captured.machine_id})}
                result.append(self._value(shared, captured, scope))
            for captured in self._latest.values():
                shared = output_variable_name(captured.step, captured.name, prefix=prefix)
                result.append(self._value(shared, captured, {}))
        return result

    def sensitive_values(self) -> frozenset[str]:
        captured = [*self._per_machine.values(), *self._latest.values()]
        return frozenset(item.value for item in captured if item.sensitive)

    @staticmethod
    def _value(
        name: str, captured: _Captured, scope: dict[ScopeField, frozenset[str]]
    ) -> VariableValue:
        return VariableValue(
            name=name,
            value=captured.value,
            scope=scope,
            is_sensitive=captured.sensitive,
            source=SYSTEM_SOURCE,
        )
