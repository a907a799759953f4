"""Just enough PromQL lexing to find the series selectors of an expression: their metric names, and a way to scope
every selector to one label value (the operator's PrometheusRule: `namespace="<platform namespace>"`).

Why not a parser: the only questions asked are "which metrics does this read" and "add a matcher to each selector",
and both follow from the lexical structure alone. In PromQL every `{...}` is a selector's matcher list, and an
identifier is a metric name unless it is a keyword, is followed by `(` (a function or an aggregation), or stands in a
label list (`by (...)`, `on (...)`, ...). Grafana variables (`$service`, `${__rate_interval}`) are skipped, so
dashboard queries can be read as they are. The tests check both answers against Prometheus's own parser
(`/api/v1/parse_query`, `promtool promql label-matchers set`) for every shipped expression.

Never evaluates anything; raises PromQLSyntaxError on text that cannot be lexed (an unterminated string, a stray
character, unbalanced brackets), so a broken rule fails loudly instead of being scoped wrongly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Aggregations (`sum by (x) (...)` puts a keyword, not `(`, after them), binary and set operators, modifiers:
# identifiers that are never metric names (PromQL's lexer reserves them too).
AGGREGATIONS = frozenset(
    {
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    }
)
KEYWORDS = AGGREGATIONS | frozenset(
    {
        "and",
        "or",
        "unless",
        "atan2",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "start",
        "end",
        "inf",
        "nan",
        "smoothed",
        "anchored",
        "fill",
        "fill_left",
        "fill_right",
    }
)
# Modifiers followed by a parenthesised list of label names (not expressions).
LABEL_LIST_MODIFIERS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<variable>\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*|\[\[[A-Za-z0-9_:.]+\]\])
  | (?P<duration>(?:\d+(?:ms|[smhdwy]))+(?![A-Za-z0-9_]))
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_:]*)  # not from `:` (a subquery's step, `[5m:30s]`), which no name here uses
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=,(){}\[\]@:])
    """,
    re.VERBOSE,
)


class PromQLSyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Selector:
    """One series selector: its metric name (None for `{__name__=~...}` alone) and where to insert a matcher."""

    name: str | None
    matchers: str
    """The text between the braces ("" when there are none)."""
    insert_at: int
    """Offset where a new matcher goes: before the closing brace, or right after the name when there are no braces."""
    braces: bool


def tokens(expr: str) -> list[Token]:
    out, pos = [], 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            raise PromQLSyntaxError(f"cannot read PromQL at offset {pos}: {expr[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        if kind != "space":
            out.append(Token(kind, match.group(), match.start(), match.end()))
        pos = match.end()
    return out


def _closing(toks: list[Token], i: int, opening: str, closing: str) -> int:
    """Index of the token closing the bracket opened at `i`."""
    depth = 0
    for j in range(i, len(toks)):
        if toks[j].text == opening:
            depth += 1
        elif toks[j].text == closing:
            depth -= 1
            if depth == 0:
                return j
    raise PromQLSyntaxError(f"unbalanced {opening!r} at offset {toks[i].start}")


def _check_balanced(toks: list[Token]) -> None:
    pairs, stack = {")": "(", "]": "[", "}": "{"}, []
    for tok in toks:
        if tok.kind != "op":
            continue
        if tok.text in "([{":
            stack.append(tok)
        elif tok.text in pairs and (not stack or stack.pop().text != pairs[tok.text]):
            raise PromQLSyntaxError(f"unbalanced {tok.text!r} at offset {tok.start}")
    if stack:
        raise PromQLSyntaxError(f"unclosed {stack[-1].text!r} at offset {stack[-1].start}")


def selectors(expr: str) -> list[Selector]:
    toks = tokens(expr)
    _check_balanced(toks)
    out: list[Selector] = []
    i = 0
    while i < len(toks):
        tok = toks[i]
        following = toks[i + 1] if i + 1 < len(toks) else None
        if tok.kind == "ident" and tok.text.lower() in LABEL_LIST_MODIFIERS:
            if following is not None and following.text == "(":
                i = _closing(toks, i + 1, "(", ")") + 1  # a list of label names
                continue
        elif tok.kind == "ident" and tok.text.lower() not in KEYWORDS and not (following and following.text == "("):
            if following is not None and following.text == "{":
                close = _closing(toks, i + 1, "{", "}")
                out.append(Selector(tok.text, expr[following.end : toks[close].start], toks[close].start, True))
                i = close + 1
                continue
            out.append(Selector(tok.text, "", tok.end, False))
        elif tok.text == "{":
            close = _closing(toks, i, "{", "}")
            out.append(Selector(None, expr[tok.end : toks[close].start], toks[close].start, True))
            i = close + 1
            continue
        i += 1
    return out


_NAME_MATCHER = re.compile(r"""__name__\s*=\s*(?:"((?:\\.|[^"\\])*)"|'((?:\\.|[^'\\])*)')""")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads (`{__name__="x"}` included; regex name matchers are not names)."""
    names = set()
    for sel in selectors(expr):
        if sel.name is not None:
            names.add(sel.name)
        for match in _NAME_MATCHER.finditer(sel.matchers):
            names.add(match.group(1) if match.group(1) is not None else match.group(2))
    return names


def with_matcher(expr: str, label: str, value: str) -> str:
    """`expr` with `label="value"` added to every selector (`a{b="c"}` -> `a{b="c",label="value"}`)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", label):
        raise ValueError(f"not a label name: {label!r}")
    quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    matcher = f"{label}={quoted}"
    out, last = [], 0
    for sel in selectors(expr):
        out.append(expr[last : sel.insert_at])
        if not sel.braces:
            out.append("{" + matcher + "}")
        elif sel.matchers.strip() == "" or sel.matchers.rstrip().endswith(","):
            out.append(matcher)
        else:
            out.append("," + matcher)
        last = sel.insert_at
    out.append(expr[last:])
    return "".join(out)
