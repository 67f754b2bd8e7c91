"""The search grammar for runs and versions, as MLflow's clients write it. Pure Python.

    metrics.f1 > 0.9 AND params.optimizer = 'adam' AND tags.`team name` LIKE 'vision%'
    attributes.status IN ('FINISHED', 'FAILED') AND datasets.digest = 'abc123'
    order_by: ["metrics.f1 DESC", "attributes.start_time"]

Only AND joins clauses. `parse_filter` returns a list of Clause; `parse_order` an Order. Errors are SearchError with
a message that says what to fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ENTITIES = {
    "metric": "metrics",
    "metrics": "metrics",
    "param": "params",
    "params": "params",
    "parameter": "params",
    "parameters": "params",
    "tag": "tags",
    "tags": "tags",
    "attribute": "attributes",
    "attributes": "attributes",
    "attr": "attributes",
    "run": "attributes",
    "dataset": "datasets",
    "datasets": "datasets",
}
COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")
STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL")
ALL_OPS = ("=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL")


class SearchError(ValueError):
    """A filter or order that cannot be parsed; the message names the problem."""


@dataclass(frozen=True)
class Clause:
    entity: str  # metrics | params | tags | attributes | datasets
    key: str
    op: str  # one of ALL_OPS
    value: object = None  # float for metrics, str for others, tuple for IN, None for IS NULL


@dataclass(frozen=True)
class Order:
    entity: str
    key: str
    descending: bool


_TOKEN = re.compile(
    r"""
    \s*(?:
      (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
    | (?P<ident>(?:`[^`]+`|[A-Za-z_][A-Za-z0-9_\-]*)(?:\.(?:`[^`]+`|"[^"]+"|[A-Za-z0-9_][A-Za-z0-9_\-./:]*))?)
    | (?P<number>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|[-+]?(?:inf|infinity|nan)\b)
    | (?P<op><=|>=|!=|<>|=|<|>)
    | (?P<lparen>\()
    | (?P<rparen>\))
    | (?P<comma>,)
    )
    """,
    re.VERBOSE | re.IGNORECASE,
)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise SearchError(f"Cannot read the filter near {text[pos : pos + 20]!r}.")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tokens


def _unquote(text: str) -> str:
    quote = text[0]
    body = text[1:-1]
    return body.replace(quote * 2, quote).replace("\\" + quote, quote).replace("\\\\", "\\")


def _split_identifier(ident: str, *, default_entity: str | None = None) -> tuple[str, str]:
    if ident.startswith("`") and ident.endswith("`") and ident.count("`") == 2:
        head, key = None, ident[1:-1]
    elif "." in ident:
        head, _, key = ident.partition(".")
    else:
        head, key = None, ident
    if head is None:
        if default_entity is None:
            raise SearchError(
                f"{ident!r} needs an entity: write metrics.{key}, params.{key}, tags.{key} or attributes.{key}."
            )
        entity = default_entity
    else:
        entity = ENTITIES.get(head.strip("`").lower())
        if entity is None:
            raise SearchError(
                f"Unknown entity {head!r}; use metrics., params., tags., attributes. or datasets. before the key."
            )
    if key.startswith("`") and key.endswith("`") or key.startswith('"') and key.endswith('"'):
        key = key[1:-1]
    if not key:
        raise SearchError(f"{ident!r} has no key after the entity.")
    return entity, key


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise SearchError(f"{text!r} is not a number.") from None


def parse_filter(text: str | None, *, default_entity: str | None = None) -> list[Clause]:
    """Parse `a AND b AND c` into clauses. An empty filter is an empty list.

    With `default_entity`, a bare key (`name LIKE 'a%'`, as MLflow writes experiment and model searches) belongs to
    that entity; without it, every key needs its entity.
    """
    if text is None or not text.strip():
        return []
    tokens = _tokenize(text)
    clauses: list[Clause] = []
    i = 0

    def peek(offset: int = 0) -> tuple[str, str] | None:
        return tokens[i + offset] if i + offset < len(tokens) else None

    while i < len(tokens):
        kind, value = tokens[i]
        if kind != "ident":
            raise SearchError(f"Expected a key such as metrics.accuracy, found {value!r}.")
        entity, key = _split_identifier(value, default_entity=default_entity)
        i += 1
        nxt = peek()
        if nxt is None:
            raise SearchError(f"{value!r} needs a comparison, such as > 0.9 or = 'x'.")
        word = nxt[1].upper()
        if nxt[0] == "op":
            op = "!=" if nxt[1] == "<>" else nxt[1]
            i += 1
            operand = peek()
            if operand is None:
                raise SearchError(f"{value} {op} needs a value.")
            i += 1
            if entity == "metrics":
                if operand[0] != "number":
                    raise SearchError(f"Metric {key!r} compares with a number, not {operand[1]!r}.")
                clauses.append(Clause(entity, key, op, _number(operand[1])))
            else:
                if operand[0] == "string":
                    literal = _unquote(operand[1])
                elif operand[0] == "number":
                    literal = operand[1]
                else:
                    raise SearchError(f"Compare {value} with a quoted string, such as '{operand[1]}'.")
                if op not in COMPARISONS:
                    raise SearchError(f"Unsupported comparison {op!r}.")
                clauses.append(Clause(entity, key, op, literal))
        elif nxt[0] == "ident" and word in ("LIKE", "ILIKE", "IN", "IS", "NOT"):
            i += 1
            if word == "IS":
                after = peek()
                if after and after[1].upper() == "NOT":
                    i += 1
                    after = peek()
                    op = "IS NOT NULL"
                else:
                    op = "IS NULL"
                if not after or after[1].upper() != "NULL":
                    raise SearchError(f"Write {value} IS NULL or {value} IS NOT NULL.")
                i += 1
                clauses.append(Clause(entity, key, op, None))
            elif word in ("LIKE", "ILIKE"):
                operand = peek()
                if not operand or operand[0] != "string":
                    raise SearchError(f"{word} takes a quoted pattern, such as '%vision%'.")
                i += 1
                if entity == "metrics":
                    raise SearchError(f"Metrics compare with numbers; {word} works on params, tags and attributes.")
                clauses.append(Clause(entity, key, word, _unquote(operand[1])))
            else:
                op = "IN"
                if word == "NOT":
                    after = peek()
                    if not after or after[1].upper() != "IN":
                        raise SearchError(f"Expected NOT IN after {value}.")
                    i += 1
                    op = "NOT IN"
                if not peek() or peek()[0] != "lparen":
                    raise SearchError(f"{op} takes a parenthesised list, such as ('a', 'b').")
                i += 1
                items: list[object] = []
                while True:
                    item = peek()
                    if item is None:
                        raise SearchError(f"The {op} list is not closed with ')'.")
                    if item[0] == "string" and entity == "metrics":
                        raise SearchError(f"Metric {key!r} compares with numbers, not {item[1]}.")
                    if item[0] == "string":
                        items.append(_unquote(item[1]))
                    elif item[0] == "number":
                        items.append(_number(item[1]) if entity == "metrics" else item[1])
                    else:
                        raise SearchError(f"{op} lists hold quoted strings, found {item[1]!r}.")
                    i += 1
                    sep = peek()
                    if sep is None:
                        raise SearchError(f"The {op} list is not closed with ')'.")
                    i += 1
                    if sep[0] == "rparen":
                        break
                    if sep[0] != "comma":
                        raise SearchError(f"Separate {op} items with commas.")
                if not items:
                    raise SearchError(f"The {op} list is empty.")
                clauses.append(Clause(entity, key, op, tuple(items)))
        else:
            raise SearchError(f"Expected a comparison after {value}, found {nxt[1]!r}.")
        following = peek()
        if following is None:
            break
        if following[0] == "ident" and following[1].upper() == "AND":
            i += 1
            if peek() is None:
                raise SearchError("The filter ends with AND.")
            continue
        if following[0] == "ident" and following[1].upper() == "OR":
            raise SearchError("OR is not supported: join clauses with AND, or run two searches.")
        raise SearchError(f"Join clauses with AND (found {following[1]!r}).")
    return clauses


def parse_order(text: str, *, default_entity: str = "attributes") -> Order:
    """Parse `metrics.f1 DESC`, `-metrics.f1` or `attributes.start_time ASC`."""
    text = (text or "").strip()
    if not text:
        raise SearchError("An order_by entry is empty.")
    descending = False
    if text.startswith("-"):
        descending, text = True, text[1:].strip()
    parts = text.rsplit(None, 1)
    if len(parts) == 2 and parts[1].upper() in ("ASC", "DESC"):
        descending = parts[1].upper() == "DESC"
        text = parts[0]
    entity, key = _split_identifier(text, default_entity=default_entity)
    return Order(entity, key, descending)
