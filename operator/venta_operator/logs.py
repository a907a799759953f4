"""The operator's log lines in the platform's format: JSON with `timestamp, level, service, message, trace_id,
span_id, request_id` (SPEC section 10), so that one log pipeline (and one Loki query) reads services and operator.

`kopf run --log-format=json` writes Kopf's own JSON (`message, timestamp, severity, object`). `use_platform_format`
swaps the formatter of the handler Kopf installed (its stream and level stay) for the kit's, plus the object a line
is about (`object`: Kopf's reference of the VentaPlatform). Only a JSON handler is swapped: `--log-format=full` keeps
its text for a terminal. The request id is one per reconcile pass (`handlers._pass`), so every line of a pass, and
only those, share it (Kopf's own lines around a handler have none).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator

from services.kit.logging import JsonFormatter, request_id_var

SERVICE = "operator"
_KOPF_ATTRIBUTES = ("k8s_ref", "k8s_skip", "settings")  # set by Kopf's object loggers; `settings` is not for a log


class OperatorJsonFormatter(JsonFormatter):
    def __init__(self) -> None:
        super().__init__(SERVICE)

    def format(self, record: logging.LogRecord) -> str:
        fields = {key: value for key, value in vars(record).items() if key not in _KOPF_ATTRIBUTES}
        ref = getattr(record, "k8s_ref", None)
        if ref:
            fields["object"] = ref
        return super().format(logging.makeLogRecord(fields))


def _is_json(formatter: logging.Formatter | None) -> bool:
    # Kopf's ObjectJsonFormatter / ObjectPrefixingJsonFormatter live in a private module: recognised by name.
    return formatter is not None and "Json" in type(formatter).__name__ and not isinstance(formatter, JsonFormatter)


def use_platform_format() -> int:
    """Re-format the root logger's JSON handlers (installed by `kopf run`); returns how many were changed."""
    changed = 0
    for handler in logging.getLogger().handlers:
        if _is_json(handler.formatter):
            handler.setFormatter(OperatorJsonFormatter())
            changed += 1
    return changed


@contextlib.contextmanager
def request_scope() -> Iterator[str]:
    """A fresh request id on the log lines written inside the block (one reconcile pass), and only those: Kopf runs
    an object's handlers one after another in one task, where an id left set would mark the next handler's lines."""
    request_id = uuid.uuid4().hex
    token = request_id_var.set(request_id)
    try:
        yield request_id
    finally:
        request_id_var.reset(token)
