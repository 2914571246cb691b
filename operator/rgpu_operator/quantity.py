"""Kubernetes resource quantities (``500m``, ``16Gi``, ``1e3``) as exact decimals.

The API server and KServe's webhook re-serialise quantities in canonical form (``1000m`` ->
``1``, ``17179869184`` -> ``16Gi`` is kept as written only when already canonical), so the
operator compares them by value, never as text. Grammar: k8s.io/apimachinery
``pkg/api/resource/quantity.go`` (``ParseQuantity``).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

#: Decimal suffixes are powers of 1000 (n = 1000**-3 ... E = 1000**6), binary ones of 1024.
_SUFFIX = {
    **{suffix: Decimal(1000) ** power for power, suffix in enumerate("num kMGTPE", start=-3) if suffix != " "},
    "": Decimal(1),
    **{suffix: Decimal(1024) ** power for power, suffix in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"), start=1)},
}
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?$")


def parse(value: str | int | float) -> Decimal:
    """The value of a quantity; ValueError for anything the API server would refuse."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a quantity")
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    match = _QUANTITY.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a quantity (e.g. 500m, 2, 16Gi)")
    try:
        number = Decimal(match[1])
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only numbers
        raise ValueError(f"{value!r} is not a quantity") from exc
    if match[2]:
        return number * Decimal(10) ** int(match[2][1:])
    return number * _SUFFIX[match[3] or ""]


def is_quantity(value: object) -> bool:
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        return False
    try:
        parse(value)
    except ValueError:
        return False
    return True


def equal(a: str | int | float, b: str | int | float) -> bool:
    """Same value (``1000m`` == ``1``, ``16Gi`` == ``17179869184``)."""
    return parse(a) == parse(b)


def gib(value: Decimal | int) -> str:
    """Whole gibibytes as a canonical quantity (sizes the operator computes)."""
    return canonical(f"{int(value)}Gi")


def add(*values: str) -> Decimal:
    return sum((parse(v) for v in values), Decimal(0))


_BINARY = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_DECIMAL = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}


def canonical(value: str | int | float) -> str:
    """The form the API server stores (``Quantity.String()``): binary suffixes stay binary
    (``1024Mi`` -> ``1Gi``, ``1536Mi`` stays), decimal ones are reduced (``1000m`` -> ``1``,
    ``0.5`` -> ``500m``). Emitting it keeps live objects textually equal to ours."""
    text = str(value).strip()
    amount = parse(value)
    if amount == 0:
        return "0"
    if amount != amount.to_integral():
        amount = amount.quantize(Decimal("1e-9"), rounding="ROUND_UP")
    binary = bool(re.search(r"[KMGTPE]i$", text))
    if binary and amount == amount.to_integral() and abs(amount) >= 1024:
        number, power = int(amount), 0
        while power < 6 and number % 1024 == 0:
            number //= 1024
            power += 1
        return f"{number}{_BINARY[power]}"
    mantissa, exponent = int((amount * Decimal(10) ** 9).to_integral()), -9
    while exponent < 18 and mantissa % 1000 == 0:
        mantissa //= 1000
        exponent += 3
    if re.search(r"[eE][+-]?\d+$", text):
        return f"{mantissa}" if exponent == 0 else f"{mantissa}e{exponent}"
    return f"{mantissa}{_DECIMAL[exponent]}"
