"""Model cards: the sections a card has, their limits, how a version's card falls back on its model's, and the
suggestions drawn from what the registry knows (datasets, metrics, environment, owners). Pure Python: no Django.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# (key, title, what to write): the order a card reads in.
SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("intended_use", "Intended use", "What the model is for, who uses it and how its output is acted on."),
    ("out_of_scope", "Out-of-scope use", "Uses it was not built or checked for, and must not be put to."),
    ("training_data", "Training data", "What it learned from: datasets, periods, populations, preprocessing."),
    ("evaluation", "Evaluation data and results", "What it was tested on and how well it did, by group if relevant."),
    ("limitations", "Limitations and risks", "Where it fails, known biases, what harm a wrong answer does."),
    ("owners", "Owners and contact", "Who answers for it and how to reach them."),
)
SECTION_KEYS = tuple(key for key, _, _ in SECTIONS)
TITLES = {key: title for key, title, _ in SECTIONS}
# Characters per section: a card is read by reviewers, and each change is kept whole in the audit log.
SECTION_MAX = 10_000
# What the card gate asks for.
REQUIRED_FOR_GATE = ("intended_use", "limitations")


class CardError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def checked_sections(sections: Mapping[str, object]) -> dict[str, str]:
    """Sections as stored: known keys only, text, within SECTION_MAX, line endings normalised; empty ones dropped."""
    checked = {}
    for key, value in sections.items():
        if key not in TITLES:
            raise CardError(str(key), f"no such section; use one of {', '.join(SECTION_KEYS)}.")
        if value is None:
            continue
        if not isinstance(value, str):
            raise CardError(key, "must be text (Markdown).")
        text = value.replace("\r\n", "\n").strip()
        if len(text) > SECTION_MAX:
            raise CardError(
                key, f"{TITLES[key]} is {len(text):,} characters; the limit is {SECTION_MAX:,}. Shorten it or link out."
            )
        if text:
            checked[key] = text
    return checked


@dataclass(frozen=True, slots=True)
class Section:
    key: str
    title: str
    help: str
    text: str
    inherited: bool  # the version has none of its own: this is the model's


def effective(model_sections: Mapping[str, str] | None, version_sections: Mapping[str, str] | None) -> list[Section]:
    """Every section as a version's card reads: its own text, else its model's (marked inherited)."""
    own, base = version_sections or {}, model_sections or {}
    result = []
    for key, title, help_text in SECTIONS:
        if own.get(key):
            result.append(Section(key, title, help_text, own[key], False))
        else:
            result.append(Section(key, title, help_text, base.get(key, ""), version_sections is not None))
    return result


def missing_for_gate(sections: Iterable[Section]) -> list[str]:
    filled = {s.key for s in sections if s.text.strip()}
    return [TITLES[key] for key in REQUIRED_FOR_GATE if key not in filled]


# --- Suggestions ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DatasetFact:
    name: str
    digest: str
    context: str
    rows: int | None
    source: str


def _number(value: float) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.4g}"


def _dataset_line(d: DatasetFact) -> str:
    parts = [f"**{d.name}** (digest `{d.digest[:12]}`"]
    if d.rows is not None:
        parts.append(f", {d.rows:,} rows")
    parts.append(")")
    if d.source:
        parts.append(f" from `{d.source}`")
    return "- " + "".join(parts)


EVALUATION_CONTEXTS = ("evaluation", "eval", "test", "validation")


def suggestions(
    *,
    datasets: Iterable[DatasetFact] = (),
    metrics: Mapping[str, float] | None = None,
    python_version: str = "",
    platform: str = "",
    packages: Mapping[str, str] | None = None,
    image: str = "",
    git_commit: str = "",
    owners: Iterable[str] = (),
) -> dict[str, str]:
    """Markdown drafts for the sections the registry can speak to, from a version's run and its model's owners."""
    drafts: dict[str, str] = {}
    datasets = list(datasets)
    training = [d for d in datasets if d.context.lower() not in EVALUATION_CONTEXTS]
    evaluation = [d for d in datasets if d.context.lower() in EVALUATION_CONTEXTS]
    lines = []
    if training:
        lines += ["Datasets logged by the training run:", "", *(_dataset_line(d) for d in training)]
    environment = [
        f"Python {python_version}" if python_version else "",
        platform,
        f"image `{image}`" if image else "",
        f"commit `{git_commit[:12]}`" if git_commit else "",
    ]
    notable = [f"{name} {version}" for name, version in sorted((packages or {}).items()) if name in NOTABLE_PACKAGES]
    if any(environment) or notable:
        lines += ["", "Built with " + ", ".join([p for p in environment if p] + notable) + "."]
    if lines:
        drafts["training_data"] = "\n".join(lines).strip()
    lines = []
    if evaluation:
        lines += ["Evaluated on:", "", *(_dataset_line(d) for d in evaluation)]
    if metrics:
        rows = [f"| {key} | {_number(value)} |" for key, value in sorted(metrics.items())[:30]]
        lines += ["", "| Metric | Value |", "| --- | --- |", *rows]
    if lines:
        drafts["evaluation"] = "\n".join(lines).strip()
    owners = [o for o in owners if o]
    if owners:
        drafts["owners"] = "\n".join(f"- {o}" for o in owners)
    return drafts


# Packages worth naming in a card's environment line (the rest are in the run's environment).
NOTABLE_PACKAGES = frozenset(
    {
        "scikit-learn",
        "torch",
        "tensorflow",
        "keras",
        "xgboost",
        "lightgbm",
        "catboost",
        "transformers",
        "jax",
        "pandas",
        "numpy",
        "statsmodels",
        "mlflow",
    }
)
