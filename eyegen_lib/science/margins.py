"""A claim's margin in the units of what it compares: shared by the recorder and the models' claims."""
from __future__ import annotations

__all__ = ["rising_margin"]


def rising_margin(*values: float) -> float:
    """The margin of a claim that ``values`` rise in the order given (a < b < c …): the smallest step
    between neighbours, > 0 exactly when every step rises (a claim "x beats y" is ``rising_margin(x, y)``
    for lower-is-better scores). In the values' own units, so seeds' margins compare."""
    if len(values) < 2:
        raise ValueError("a rising order needs at least two values")
    return float(min(float(b) - float(a) for a, b in zip(values, values[1:])))
