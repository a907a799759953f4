"""Whether a live child differs from its desired manifest: the check that makes a no-op reconcile write nothing.

Two tests, both needed:
- the desired-state hash annotation: it changes whenever the spec changes what we want, including when we stop
  wanting a field (a subset test cannot see a removal; server-side apply then removes the field we no longer own);
- "desired is a subset of live": someone edited or scaled the child by hand. The API server adds defaults and
  other managers add fields, so extra live fields are not drift; only a desired value that is absent or different.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from venta_operator.builders import Manifest
from venta_operator.naming import ANNOTATION_DESIRED_HASH

IGNORED_TOP_LEVEL = frozenset({"status"})


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


_SUFFIXES: dict[str, int | Decimal] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}


def quantity(text: str) -> Decimal | None:
    """A Kubernetes quantity as a number ("1000m" == "1"), or None when the text is not one."""
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if suffix and text.endswith(suffix):
            number, factor = text[: -len(suffix)], _SUFFIXES[suffix]
            break
    else:
        number, factor = text, 1
    try:
        return Decimal(number) * Decimal(factor)
    except InvalidOperation:
        return None


def _scalar_equal(want: Any, have: Any, in_quantities: bool) -> bool:
    if want == have:
        return True
    if in_quantities and isinstance(want, str | int) and isinstance(have, str | int):
        a, b = quantity(str(want)), quantity(str(have))
        return a is not None and a == b
    return False


def is_subset(want: Any, have: Any, *, in_quantities: bool = False) -> bool:
    """Every value in `want` is present and equal in `have` (lists item by item, same length)."""
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return _empty(want) and have is None
        for k, v in want.items():
            q = in_quantities or k in ("requests", "limits", "capacity")
            if k not in have or have[k] is None:
                if _empty(v):
                    continue
                return False
            if not is_subset(v, have[k], in_quantities=q):
                return False
        return True
    if isinstance(want, list):
        if have is None:
            return not want
        if not isinstance(have, list) or len(want) != len(have):
            return False
        return all(is_subset(w, h, in_quantities=in_quantities) for w, h in zip(want, have, strict=True))
    return _scalar_equal(want, have, in_quantities)


def needs_apply(desired: Manifest, live: Manifest | None) -> str | None:
    """Why the child must be applied ("missing", "changed", "drifted"), or None when it is as desired."""
    if live is None:
        return "missing"
    want_hash = desired["metadata"].get("annotations", {}).get(ANNOTATION_DESIRED_HASH)
    have_hash = (live.get("metadata", {}).get("annotations") or {}).get(ANNOTATION_DESIRED_HASH)
    if want_hash != have_hash:
        return "changed"
    body = {k: v for k, v in desired.items() if k not in IGNORED_TOP_LEVEL}
    if not is_subset(body, live):
        return "drifted"
    return None
