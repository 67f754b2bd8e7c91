"""What differs between builds, and between datasets. Pure Python: no Django, no numpy.

Every function takes plain values (dicts of params, lists of floats, dataset descriptions) and returns plain
dataclasses that a template can walk. The first build is the baseline: "changed", "added" and "removed" are always
relative to it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from registry.lib.drift import clean_histogram

# --- Value tables (params, tags, environment) -----------------------------------------------------------------------

# Tables longer than this open with only the differing rows shown.
ONLY_DIFFERENCES_AFTER = 20


@dataclass(frozen=True, slots=True)
class Row:
    """One key across builds. `changed[i]` is True when build i's value differs from the baseline's."""

    key: str
    values: tuple[str | None, ...]
    changed: tuple[bool, ...]
    same: bool

    @property
    def cells(self) -> list[tuple[str | None, bool]]:
        return list(zip(self.values, self.changed, strict=True))


def _as_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def value_rows(columns: Sequence[Mapping[str, object]], keys: Iterable[str] | None = None) -> list[Row]:
    """One Row per key (the union of all columns' keys, sorted, unless `keys` gives the order).

    A missing key is None; None differs from every present value, including the empty string.
    """
    if keys is None:
        union: set[str] = set()
        for column in columns:
            union.update(column)
        keys = sorted(union, key=lambda k: (k.lower(), k))
    rows = []
    for key in keys:
        values = tuple(_as_text(column.get(key)) for column in columns)
        baseline = values[0] if values else None
        changed = tuple(i > 0 and value != baseline for i, value in enumerate(values))
        rows.append(Row(key=key, values=values, changed=changed, same=len(set(values)) <= 1))
    return rows


def only_differences(requested: str | None, row_count: int, *, threshold: int = ONLY_DIFFERENCES_AFTER) -> bool:
    """Whether a table opens showing only differing rows: `?diff=1|0` decides, else on past `threshold` rows."""
    text = (requested or "").strip().lower()
    if text in ("1", "true", "on", "yes"):
        return True
    if text in ("0", "false", "off", "no"):
        return False
    return row_count > threshold


# --- Metrics ----------------------------------------------------------------------------------------------------------

# Words that mark a metric where lower is better: losses, errors and durations. The short ones must be a whole word
# of the name ("test_wer", not "answer_rate"); the long ones may appear anywhere ("val_loss", "trainLoss").
LOWER_IS_BETTER_WORDS = frozenset({"err", "mse", "mae", "mape", "wer", "cer", "ms", "sec", "secs"})
LOWER_IS_BETTER_PARTS = ("loss", "error", "rmse", "logloss", "perplexity", "latency", "time", "duration", "seconds")
# And where higher is better: scores of quality. Everything else (counts, sizes, learning rates...) has no direction
# until someone says which way is better.
HIGHER_IS_BETTER_WORDS = frozenset({"acc", "ap", "map", "r2", "ndcg", "iou", "dice", "bleu", "mrr", "hit", "hits"})
HIGHER_IS_BETTER_PARTS = (
    "accuracy", "precision", "recall", "f1", "auc", "score", "rouge", "specificity", "sensitivity", "throughput",
)  # fmt: skip
DIRECTION_RULE = (
    "Lower is better when the name says loss, error, rmse, mse, mae, perplexity, latency, time or duration; higher is "
    "better for accuracy, precision, recall, f1, auc, score, r2, ndcg, iou, bleu and rouge; other metrics have no "
    "known direction until you choose one on the compare page."
)
_WORD = re.compile(r"[a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def guess_lower_is_better(key: str) -> bool | None:
    """Guess a metric's direction from its name: True (lower is better) for losses, errors and durations, False for
    scores of quality, None when the name does not say."""
    lowered = key.lower()
    words = _WORD.findall(_CAMEL.sub("_", key).lower())
    if any(part in lowered for part in LOWER_IS_BETTER_PARTS) or any(w in LOWER_IS_BETTER_WORDS for w in words):
        return True
    if any(part in lowered for part in HIGHER_IS_BETTER_PARTS) or any(w in HIGHER_IS_BETTER_WORDS for w in words):
        return False
    return None


@dataclass(frozen=True, slots=True)
class Direction:
    lower_is_better: bool | None  # None: unknown
    chosen: bool  # True when the user chose it (`?lower=` / `?higher=`), False when guessed from the name

    @property
    def known(self) -> bool:
        return self.lower_is_better is not None


def metric_direction(key: str, lower: Collection[str] = (), higher: Collection[str] = ()) -> Direction:
    """The user's choice wins over the guess; naming a metric in both lists is read as "lower"."""
    if key in lower:
        return Direction(True, True)
    if key in higher:
        return Direction(False, True)
    return Direction(guess_lower_is_better(key), False)


def signed(delta: float | None) -> str:
    """A change for a table cell: "+0.0225", "−0.013", "±0"; "" when there is none."""
    if delta is None or math.isnan(delta):
        return ""
    return "±0" if delta == 0 else f"{delta:+.3g}".replace("-", "−")


def verdict(delta: float | None, direction: Direction) -> str:
    """A change judged by the metric's direction: "better", "worse", "same", or "unknown" (no direction or no
    number to judge)."""
    if delta is None or math.isnan(delta):
        return "unknown"
    if delta == 0:
        return "same"
    if not direction.known:
        return "unknown"
    return "better" if (delta < 0) == direction.lower_is_better else "worse"


def best_indices(values: Sequence[float | None], *, lower_is_better: bool | None) -> frozenset[int]:
    """Indexes of the best values: all of them when tied; NaN and missing values are never best; none when the
    direction is unknown."""
    if lower_is_better is None:
        return frozenset()
    usable = [(i, v) for i, v in enumerate(values) if v is not None and not math.isnan(v)]
    if not usable:
        return frozenset()
    target = min(v for _, v in usable) if lower_is_better else max(v for _, v in usable)
    return frozenset(i for i, v in usable if v == target)


def parse_metric_names(raw_values: Iterable[str], known: Collection[str] = ()) -> set[str]:
    """Metric names from `?lower=a,b&lower=c`; a value that is exactly a known name stays whole (names may hold ',')."""
    names: set[str] = set()
    for raw in raw_values:
        if raw in known:
            names.add(raw)
            continue
        names.update(part.strip() for part in raw.split(",") if part.strip())
    return names


def toggle_direction(
    key: str, lower: Collection[str], higher: Collection[str], *, lower_is_better: bool
) -> tuple[list[str], list[str]]:
    """The `lower` and `higher` lists after the user sets `key`'s direction; both sorted, `key` in exactly one."""
    new_lower = {k for k in lower if k != key}
    new_higher = {k for k in higher if k != key}
    (new_lower if lower_is_better else new_higher).add(key)
    return sorted(new_lower), sorted(new_higher)


# --- Packages ---------------------------------------------------------------------------------------------------------

SAME, ADDED, REMOVED, CHANGED = "same", "added", "removed", "changed"


@dataclass(frozen=True, slots=True)
class PackageRow:
    name: str
    versions: tuple[str | None, ...]
    status: tuple[str, ...]  # per build, relative to the baseline: same, added, removed or changed (baseline: same)

    @property
    def cells(self) -> list[tuple[str | None, str]]:
        return list(zip(self.versions, self.status, strict=True))


@dataclass(frozen=True, slots=True)
class PackageCounts:
    added: int = 0
    removed: int = 0
    changed: int = 0

    @property
    def total(self) -> int:
        return self.added + self.removed + self.changed


@dataclass(frozen=True, slots=True)
class PackageDiff:
    rows: list[PackageRow]  # only packages that differ somewhere, by name
    counts: list[PackageCounts]  # per build against the baseline (the baseline's own counts are zero)
    unchanged: int  # packages with the same version in every build

    def of_status(self, index: int, status: str) -> list[PackageRow]:
        return [row for row in self.rows if row.status[index] == status]


def package_diff(packages: Sequence[Mapping[str, object] | None]) -> PackageDiff:
    """Installed packages ({name: version}) of each build against the first build's."""
    columns = [
        {str(k): _as_text(v) or "" for k, v in (p or {}).items()} if isinstance(p, Mapping) else {} for p in packages
    ]
    if not columns:
        return PackageDiff(rows=[], counts=[], unchanged=0)
    baseline = columns[0]
    names = sorted(set().union(*columns), key=lambda n: (n.lower(), n))
    rows, unchanged = [], 0
    tallies = [{ADDED: 0, REMOVED: 0, CHANGED: 0} for _ in columns]
    for name in names:
        versions = tuple(column.get(name) for column in columns)
        status = []
        for i, version in enumerate(versions):
            if i == 0 or version == versions[0]:
                state = SAME
            elif versions[0] is None:
                state = ADDED
            elif version is None:
                state = REMOVED
            else:
                state = CHANGED
            if state != SAME:
                tallies[i][state] += 1
            status.append(state)
        if all(s == SAME for s in status) and name in baseline:
            unchanged += 1
        else:
            rows.append(PackageRow(name=name, versions=versions, status=tuple(status)))
    counts = [PackageCounts(t[ADDED], t[REMOVED], t[CHANGED]) for t in tallies]
    return PackageDiff(rows=rows, counts=counts, unchanged=unchanged)


# --- Datasets: schemas, row counts, which data each build used ------------------------------------------------------

NUMERIC_TYPE_WORDS = ("int", "float", "double", "decimal", "number", "numeric", "real")


def schema_columns(schema: object) -> dict[str, str]:
    """{column: type} from a stored schema: [{"name":..., "type":...}] (or a {name: type} dict). Junk is skipped."""
    if isinstance(schema, Mapping):
        return {str(k): str(v) for k, v in schema.items()}
    columns: dict[str, str] = {}
    if isinstance(schema, list | tuple):
        for item in schema:
            if isinstance(item, Mapping) and item.get("name") is not None:
                columns[str(item["name"])] = str(item.get("type") or "")
    return columns


@dataclass(frozen=True, slots=True)
class SchemaDiff:
    added: list[tuple[str, str]]  # (column, type) only in the new schema
    removed: list[tuple[str, str]]  # only in the old schema
    type_changed: list[tuple[str, str, str]]  # (column, old type, new type)
    unchanged: list[tuple[str, str]]

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.type_changed)

    @property
    def summary(self) -> str:
        parts = []
        if self.added:
            parts.append(f"{len(self.added)} added")
        if self.removed:
            parts.append(f"{len(self.removed)} removed")
        if self.type_changed:
            parts.append(f"{len(self.type_changed)} type changed")
        return ", ".join(parts) or "same columns"


def schema_diff(old: object, new: object) -> SchemaDiff:
    a, b = schema_columns(old), schema_columns(new)
    return SchemaDiff(
        added=[(name, kind) for name, kind in b.items() if name not in a],
        removed=[(name, kind) for name, kind in a.items() if name not in b],
        type_changed=[(name, a[name], kind) for name, kind in b.items() if name in a and a[name] != kind],
        unchanged=[(name, kind) for name, kind in b.items() if name in a and a[name] == kind],
    )


@dataclass(frozen=True, slots=True)
class CountChange:
    old: int | None
    new: int | None

    @property
    def delta(self) -> int | None:
        return None if self.old is None or self.new is None else self.new - self.old

    @property
    def percent(self) -> float | None:
        if self.delta is None or not self.old:
            return None
        return 100.0 * self.delta / self.old

    @property
    def text(self) -> str:
        """'+1,200 rows (+5.0%)', 'same rows', or '' when either count is unknown."""
        if self.delta is None:
            return ""
        if self.delta == 0:
            return "same number of rows"
        pct = f" ({self.percent:+.1f}%)" if self.percent is not None else ""
        return f"{self.delta:+,} rows{pct}"


def as_count(value: object) -> int | None:
    """A row count read from JSON: ints and integral floats or strings; anything else is unknown."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if math.isfinite(number) and number.is_integer() else None


@dataclass(frozen=True, slots=True)
class DatasetRef:
    """What the comparison needs to know about one dataset."""

    id: int
    name: str
    digest: str
    num_rows: int | None = None
    schema: Any = None

    @property
    def short_digest(self) -> str:
        return self.digest[:12]


@dataclass(frozen=True, slots=True)
class ContextCell:
    datasets: list[DatasetRef]
    same_as_baseline: bool
    schema: SchemaDiff | None = None  # against the baseline's dataset, when each side has exactly one
    rows: CountChange | None = None
    compare_ids: tuple[int, int] | None = None  # (baseline dataset, this dataset) when they differ


@dataclass(frozen=True, slots=True)
class ContextDiff:
    context: str
    cells: list[ContextCell]
    same: bool
    evaluation: bool


# Contexts whose data decides the metrics the builds are judged on.
EVALUATION_CONTEXTS = frozenset({"evaluation", "eval", "test", "validation"})
CONTEXT_ORDER = ("training", "train", "validation", "eval", "evaluation", "test")


def normalise_context(context: str) -> str:
    return (context or "").strip().lower()


def _context_sort_key(context: str) -> tuple[int, str]:
    return (CONTEXT_ORDER.index(context) if context in CONTEXT_ORDER else len(CONTEXT_ORDER), context)


def _digests(refs: Iterable[DatasetRef]) -> frozenset[str]:
    return frozenset(ref.digest for ref in refs)


def by_context(inputs: Iterable[tuple[str, DatasetRef]]) -> dict[str, list[DatasetRef]]:
    grouped: dict[str, list[DatasetRef]] = {}
    for context, ref in inputs:
        grouped.setdefault(normalise_context(context), []).append(ref)
    for refs in grouped.values():
        refs.sort(key=lambda r: (r.name, r.digest))
    return grouped


def dataset_diff(inputs: Sequence[Iterable[tuple[str, DatasetRef]]]) -> list[ContextDiff]:
    """For each context any build used, the datasets of each build and how they differ from the baseline's."""
    grouped = [by_context(build_inputs) for build_inputs in inputs]
    contexts = sorted(set().union(*grouped) if grouped else set(), key=_context_sort_key)
    diffs = []
    for context in contexts:
        base = grouped[0].get(context, [])
        cells = []
        for i, build in enumerate(grouped):
            refs = build.get(context, [])
            same = _digests(refs) == _digests(base)
            schema = rows = ids = None
            if i > 0 and len(refs) == 1 and len(base) == 1:
                schema = schema_diff(base[0].schema, refs[0].schema)
                rows = CountChange(base[0].num_rows, refs[0].num_rows)
                if not same:
                    ids = (base[0].id, refs[0].id)
            cells.append(ContextCell(refs, same, schema, rows, ids))
        diffs.append(
            ContextDiff(
                context=context,
                cells=cells,
                same=all(c.same_as_baseline for c in cells),
                evaluation=context in EVALUATION_CONTEXTS,
            )
        )
    return diffs


def _describe(refs: list[DatasetRef], context: str) -> str:
    if not refs:
        return f"no logged {context} dataset"
    return " and ".join(f"{ref.name} (digest {ref.short_digest}…)" for ref in refs)


def _join(labels: list[str]) -> str:
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def evaluation_warnings(labels: Sequence[str], diffs: Iterable[ContextDiff]) -> list[str]:
    """One sentence per evaluation context whose datasets differ between builds; empty when like-for-like.

    Builds that used the same data are named together: "v1 and v2 were evaluated on X (digest ...), v3 on Y".
    """
    warnings = []
    for diff in diffs:
        if not diff.evaluation or diff.same:
            continue
        groups: dict[frozenset[str], tuple[list[str], list[DatasetRef]]] = {}
        for label, cell in zip(labels, diff.cells, strict=True):
            groups.setdefault(_digests(cell.datasets), ([], cell.datasets))[0].append(label)
        parts = []
        for n, (group_labels, refs) in enumerate(groups.values()):
            verb = ("was" if len(group_labels) == 1 else "were") + " evaluated on " if n == 0 else "on "
            parts.append(f"{_join(group_labels)} {verb}{_describe(refs, diff.context)}")
        warnings.append(f"Not a like-for-like comparison ({diff.context} data): " + ", ".join(parts) + ".")
    return warnings


# --- Dataset profiles side by side ------------------------------------------------------------------------------------

NUMERIC_STATS = ("nulls", "mean", "std", "min", "p25", "p50", "p75", "max")
CATEGORICAL_STATS = ("nulls", "distinct")
STAT_LABELS = {"p25": "25%", "p50": "median", "p75": "75%", "nulls": "nulls", "distinct": "distinct"}


def is_numeric_type(type_name: str) -> bool:
    lowered = (type_name or "").lower()
    return not lowered.startswith("bool") and any(word in lowered for word in NUMERIC_TYPE_WORDS)


@dataclass(frozen=True, slots=True)
class ColumnProfile:
    name: str
    type: str  # "" when the schema does not say
    numeric: bool
    stats: Mapping[str, Any] = field(default_factory=dict)

    def stat(self, key: str) -> Any:
        return self.stats.get(key)

    @property
    def histogram(self) -> tuple[list[float], list[float]] | None:
        """(edges, counts) when the profile holds a usable histogram: len(counts) == len(edges) - 1 >= 1."""
        return clean_histogram(self.stats.get("histogram"))

    @property
    def top(self) -> list[tuple[str, float]]:
        """[(value, count)] of the profile's most frequent values, skipping malformed entries."""
        items = self.stats.get("top")
        out = []
        if isinstance(items, list):
            for item in items:
                if isinstance(item, Mapping) and "value" in item:
                    count = item.get("count")
                    if isinstance(count, int | float) and not isinstance(count, bool) and math.isfinite(count):
                        out.append((_as_text(item["value"]) or "null", float(count)))
        return out


def profile_columns(schema: object, profile: object) -> list[ColumnProfile]:
    """Every column named by the schema or the profile, in schema order, with whatever statistics exist."""
    types = schema_columns(schema)
    stats_by_column = profile.get("columns") if isinstance(profile, Mapping) else None
    if not isinstance(stats_by_column, Mapping):
        stats_by_column = {}
    names = list(types) + [str(n) for n in stats_by_column if str(n) not in types]
    columns = []
    for name in names:
        stats = stats_by_column.get(name)
        stats = stats if isinstance(stats, Mapping) else {}
        type_name = types.get(name, "")
        numeric = is_numeric_type(type_name) if type_name else ("mean" in stats or "histogram" in stats)
        columns.append(ColumnProfile(name=name, type=type_name, numeric=numeric, stats=stats))
    return columns


def as_number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass(frozen=True, slots=True)
class StatRow:
    column: str
    stat: str
    label: str
    old: Any
    new: Any
    changed: bool
    delta: float | None


def stats_side_by_side(old: ColumnProfile, new: ColumnProfile) -> list[StatRow]:
    """The statistics of one column in two datasets; `changed` marks values that differ."""
    keys = NUMERIC_STATS if (old.numeric and new.numeric) else CATEGORICAL_STATS
    rows = []
    for key in keys:
        a, b = old.stat(key), new.stat(key)
        na, nb = as_number(a), as_number(b)
        delta = nb - na if na is not None and nb is not None else None
        rows.append(StatRow(old.name, key, STAT_LABELS.get(key, key), a, b, a != b, delta))
    return rows


# --- Formatting -------------------------------------------------------------------------------------------------------


def format_number(value: object, digits: int = 6) -> str:
    """A number for a table cell: '—' when missing, thousands separators for integers, `digits` significant digits."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:.{digits}g}"
    return str(value)
