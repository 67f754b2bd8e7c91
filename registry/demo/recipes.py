"""Small, real scikit-learn trainings on the datasets shipped with scikit-learn: what the demo registers.

No Django here: a recipe loads and splits its data, trains one configuration step by step (epochs of `partial_fit`
or boosting stages), records a metric history per step, and evaluates the fitted model on the held-out test split.
scikit-learn is the demo's optional dependency, so this module is imported only when the demo runs.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn import datasets as sk_datasets
from sklearn import metrics as sk_metrics
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

DEFAULT_SPLIT_SEED = 42
TEST_SIZE = 0.2
VALIDATION_SIZE = 0.2  # of the whole data set, taken from what the test split leaves
SPLITS = ("train", "validation", "test")
EPS = 1e-15


# --- Data -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """One part of a split data set: features, target, and the same as a table (column name -> values)."""

    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    target_name: str

    def table(self) -> dict[str, list]:
        columns = {name: self.X[:, i].tolist() for i, name in enumerate(self.feature_names)}
        columns[self.target_name] = self.y.tolist()
        return columns


@dataclass(frozen=True)
class SplitData:
    dataset: str
    loader: str
    seed: int
    train: Split
    validation: Split
    test: Split
    classes: np.ndarray | None  # None for regression

    def part(self, name: str) -> Split:
        return getattr(self, name)

    def source_uri(self, part: str) -> str:
        return f"sklearn.datasets.{self.loader}?split={part}&seed={self.seed}&test_size={TEST_SIZE}"


def load_split(dataset: str, *, seed: int = DEFAULT_SPLIT_SEED) -> SplitData:
    """Load a scikit-learn toy data set; split it 60/20/20 into train, validation and test (stratified for labels)."""
    loader, target_name, labelled = DATASETS[dataset]
    bunch = getattr(sk_datasets, loader)(**LOADER_OPTIONS.get(loader, {}))
    X = np.asarray(bunch.data, dtype=float)
    y = np.asarray(bunch.target)
    classification = labelled is not None
    if labelled:
        y = np.asarray(bunch.target_names)[y].astype(str)  # train on readable labels: predict() returns them
    stratify = y if classification else None
    X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=TEST_SIZE, random_state=seed, stratify=stratify)
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest,
        y_rest,
        test_size=VALIDATION_SIZE / (1 - TEST_SIZE),
        random_state=seed,
        stratify=y_rest if classification else None,
    )
    names = [str(n) for n in bunch.feature_names] if hasattr(bunch, "feature_names") else []
    names = names or [f"x{i}" for i in range(X.shape[1])]
    return SplitData(
        dataset=dataset,
        loader=loader,
        seed=seed,
        train=Split(X_train, y_train, names, target_name),
        validation=Split(X_val, y_val, names, target_name),
        test=Split(X_test, y_test, names, target_name),
        classes=np.unique(y) if classification else None,
    )


# name -> (loader, target column, True: string labels / False: integer labels / None: regression)
DATASETS: dict[str, tuple[str, str, bool | None]] = {
    "iris": ("load_iris", "species", True),
    "wine": ("load_wine", "cultivar", True),
    "breast-cancer": ("load_breast_cancer", "diagnosis", True),
    "diabetes": ("load_diabetes", "disease_progression", None),
    "digits": ("load_digits", "digit", False),
}
# The diabetes features in their real units (age in years, BMI...), not pre-scaled, so their profiles mean something.
LOADER_OPTIONS: dict[str, dict[str, Any]] = {"load_diabetes": {"scaled": False}}


# --- Metrics (numpy, cheap enough to compute at every step) ---------------------------------------------------------


def _log_loss(y_index: np.ndarray, proba: np.ndarray) -> float:
    p = np.clip(proba[np.arange(len(y_index)), y_index], EPS, 1.0)
    return float(-np.mean(np.log(p)))


def _f1_macro(y_true: np.ndarray, y_pred: np.ndarray, classes: np.ndarray) -> float:
    scores = []
    for label in classes:
        tp = np.sum((y_pred == label) & (y_true == label))
        fp = np.sum((y_pred == label) & (y_true != label))
        fn = np.sum((y_pred != label) & (y_true == label))
        denominator = 2 * tp + fp + fn
        scores.append(2 * tp / denominator if denominator else 0.0)
    return float(np.mean(scores))


def _roc_auc(positive: np.ndarray, score: np.ndarray) -> float:
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if not n_pos or not n_neg:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _classification_step(
    classes: np.ndarray, train: Split, proba_train: np.ndarray, val: Split, proba_val: np.ndarray
) -> dict[str, float]:
    y_train = np.searchsorted(classes, train.y)
    y_val = np.searchsorted(classes, val.y)
    pred_train = proba_train.argmax(axis=1)
    pred_val = proba_val.argmax(axis=1)
    values = {
        "train_loss": _log_loss(y_train, proba_train),
        "val_loss": _log_loss(y_val, proba_val),
        "train_accuracy": float(np.mean(pred_train == y_train)),
        "val_accuracy": float(np.mean(pred_val == y_val)),
        "val_f1": _f1_macro(y_val, pred_val, np.arange(len(classes))),
    }
    if len(classes) == 2:
        values["val_roc_auc"] = _roc_auc(y_val == 1, proba_val[:, 1])
    return values


def _regression_step(train: Split, pred_train: np.ndarray, val: Split, pred_val: np.ndarray) -> dict[str, float]:
    residual = val.y - pred_val
    variance = float(np.sum((val.y - val.y.mean()) ** 2))
    return {
        "train_rmse": float(np.sqrt(np.mean((train.y - pred_train) ** 2))),
        "val_rmse": float(np.sqrt(np.mean(residual**2))),
        "val_mae": float(np.mean(np.abs(residual))),
        "val_r2": float(1 - np.sum(residual**2) / variance) if variance else float("nan"),
    }


def evaluate(model: Any, data: SplitData) -> dict[str, float]:
    """Final metrics of a fitted model on the test split, computed by sklearn.metrics."""
    X, y = data.test.X, data.test.y
    if data.classes is None:
        predicted = model.predict(X)
        return {
            "test_rmse": float(np.sqrt(sk_metrics.mean_squared_error(y, predicted))),
            "test_mae": float(sk_metrics.mean_absolute_error(y, predicted)),
            "test_r2": float(sk_metrics.r2_score(y, predicted)),
        }
    proba = model.predict_proba(X)
    predicted = model.classes_[proba.argmax(axis=1)]
    values = {
        "test_accuracy": float(sk_metrics.accuracy_score(y, predicted)),
        "test_f1_macro": float(sk_metrics.f1_score(y, predicted, average="macro", zero_division=0)),
        "test_precision_macro": float(sk_metrics.precision_score(y, predicted, average="macro", zero_division=0)),
        "test_recall_macro": float(sk_metrics.recall_score(y, predicted, average="macro", zero_division=0)),
        "test_log_loss": float(sk_metrics.log_loss(y, np.clip(proba, EPS, 1), labels=model.classes_)),
    }
    if len(model.classes_) == 2:
        values["test_roc_auc"] = float(sk_metrics.roc_auc_score(y == model.classes_[1], proba[:, 1]))
    return values


# --- Training -------------------------------------------------------------------------------------------------------


@dataclass
class Trained:
    model: Any
    history: dict[str, list[float]]  # metric key -> one value per step (step i + 1)
    timestamps: list[int]  # epoch milliseconds at which each step ended
    params: dict[str, Any]  # every parameter of the estimator, as MLflow's autologging records them

    @property
    def steps(self) -> int:
        return len(self.timestamps)

    def last(self, key: str) -> float:
        return self.history[key][-1]


def _record(history: dict[str, list[float]], timestamps: list[int], values: dict[str, float]) -> None:
    for key, value in values.items():
        history.setdefault(key, []).append(value)
    timestamps.append(int(time.time() * 1000))


def _epochs(estimator: Any, data: SplitData, steps: int, seed: int) -> Trained:
    """Train `estimator` (SGD or MLP) for `steps` epochs of partial_fit over shuffled, standardised training data."""
    scaler = StandardScaler().fit(data.train.X)
    X_train = scaler.transform(data.train.X)
    X_val = scaler.transform(data.validation.X)
    rng = np.random.default_rng(seed)
    history: dict[str, list[float]] = {}
    timestamps: list[int] = []
    extra = {} if data.classes is None else {"classes": data.classes}
    for _ in range(steps):
        order = rng.permutation(len(X_train))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            estimator.partial_fit(X_train[order], data.train.y[order], **extra)
        if data.classes is None:
            values = _regression_step(data.train, estimator.predict(X_train), data.validation, estimator.predict(X_val))
        else:
            values = _classification_step(
                data.classes,
                data.train,
                estimator.predict_proba(X_train),
                data.validation,
                estimator.predict_proba(X_val),
            )
            if hasattr(estimator, "loss_"):
                values["optimizer_loss"] = float(estimator.loss_)
        _record(history, timestamps, values)
    model = Pipeline([("scaler", scaler), ("estimator", estimator)])
    return Trained(model=model, history=history, timestamps=timestamps, params=estimator.get_params())


def _boosting(estimator: GradientBoostingClassifier, data: SplitData, steps: int, seed: int) -> Trained:
    """Fit `steps` boosting stages, then replay them with staged_predict_proba to get a history per stage."""
    estimator.set_params(n_estimators=steps)
    estimator.fit(data.train.X, data.train.y)
    history: dict[str, list[float]] = {}
    timestamps: list[int] = []
    stages = zip(
        estimator.staged_predict_proba(data.train.X),
        estimator.staged_predict_proba(data.validation.X),
        estimator.train_score_,
        strict=True,
    )
    for proba_train, proba_val, deviance in stages:
        values = _classification_step(data.classes, data.train, proba_train, data.validation, proba_val)
        values["train_deviance"] = float(deviance)
        _record(history, timestamps, values)
    return Trained(model=estimator, history=history, timestamps=timestamps, params=estimator.get_params())


# --- Recipes --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """One configuration to train: estimator hyperparameters, and the split it is trained and evaluated on."""

    hyperparameters: dict[str, Any]
    split_seed: int = DEFAULT_SPLIT_SEED


@dataclass(frozen=True)
class Recipe:
    model_name: str
    dataset: str
    estimator: type
    train: Callable[[Any, SplitData, int, int], Trained]
    description: str
    selection: tuple[str, ...]  # history keys ranking versions on validation, best first: "-key" means lower is better
    versions: list[Version] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return "regression" if DATASETS[self.dataset][2] is None else "classification"

    def build(self, version: Version, seed: int) -> Any:
        return self.estimator(random_state=seed, **version.hyperparameters)

    def fit(self, version: Version, data: SplitData, *, steps: int, seed: int) -> Trained:
        """Train `version` for `steps` steps (seeded by `seed`), recording its metric history."""
        # These models are tiny: multi-threaded BLAS only adds synchronisation, and on a busy machine it made the
        # digits MLP up to ten times slower than one thread.
        with threadpool_limits(limits=1):
            return self.train(self.build(version, seed), data, steps, seed)

    def score(self, trained: Trained) -> tuple[float, ...]:
        """A sort key: higher is better."""
        return tuple(-trained.last(k[1:]) if k.startswith("-") else trained.last(k) for k in self.selection)


def _versions(*configs: dict[str, Any], odd_split: dict[int, int] | None = None) -> list[Version]:
    odd_split = odd_split or {}
    return [
        Version(dict(config), odd_split.get(number, DEFAULT_SPLIT_SEED)) for number, config in enumerate(configs, 1)
    ]


RECIPES: list[Recipe] = [
    Recipe(
        model_name="iris-classifier",
        dataset="iris",
        estimator=SGDClassifier,
        train=_epochs,
        description=(
            "Classifies iris flowers into *setosa*, *versicolor* and *virginica* from four sepal and petal "
            "measurements.\n\nA linear model trained by stochastic gradient descent on standardised features, "
            "one `partial_fit` epoch per step."
        ),
        selection=("val_accuracy", "-val_loss"),
        tags={"task": "classification", "framework": "scikit-learn", "team": "botany"},
        # Version 5 was trained and evaluated on another split: its metrics are not comparable with the others'.
        versions=_versions(
            {"loss": "log_loss", "alpha": 1e-2, "learning_rate": "constant", "eta0": 0.001},
            {"loss": "log_loss", "alpha": 1e-3, "learning_rate": "optimal"},
            {"loss": "modified_huber", "alpha": 1e-3, "learning_rate": "optimal"},
            {"loss": "log_loss", "alpha": 1e-4, "learning_rate": "invscaling", "eta0": 0.1},
            {"loss": "modified_huber", "alpha": 1e-4, "learning_rate": "constant", "eta0": 0.01},
            {"loss": "log_loss", "alpha": 3e-4, "learning_rate": "adaptive", "eta0": 0.05},
            {"loss": "log_loss", "alpha": 1e-5, "penalty": "elasticnet", "l1_ratio": 0.15},
            {"loss": "modified_huber", "alpha": 3e-3, "learning_rate": "invscaling", "eta0": 0.05},
            odd_split={5: 7},
        ),
    ),
    Recipe(
        model_name="breast-cancer-detector",
        dataset="breast-cancer",
        estimator=GradientBoostingClassifier,
        train=_boosting,
        description=(
            "Flags fine-needle aspirate images as *malignant* or *benign* from 30 nucleus measurements "
            "(Wisconsin diagnostic data set).\n\nGradient-boosted trees; each step is one boosting stage."
        ),
        selection=("val_roc_auc", "-val_loss"),
        tags={"task": "classification", "framework": "scikit-learn", "team": "health"},
        versions=_versions(
            {"learning_rate": 0.02, "max_depth": 1},
            {"learning_rate": 0.05, "max_depth": 2},
            {"learning_rate": 0.1, "max_depth": 2},
            {"learning_rate": 0.1, "max_depth": 3, "subsample": 0.8},
            {"learning_rate": 0.3, "max_depth": 1},
            {"learning_rate": 0.05, "max_depth": 3, "subsample": 0.7, "max_features": "sqrt"},
            {"learning_rate": 0.2, "max_depth": 2, "subsample": 0.9},
            {"learning_rate": 0.01, "max_depth": 3},
        ),
    ),
    Recipe(
        model_name="diabetes-regressor",
        dataset="diabetes",
        estimator=SGDRegressor,
        train=_epochs,
        description=(
            "Predicts disease progression one year after baseline from age, sex, BMI, blood pressure and six "
            "serum measurements.\n\nA linear regression fitted by stochastic gradient descent, one epoch per step."
        ),
        selection=("-val_rmse",),
        tags={"task": "regression", "framework": "scikit-learn", "team": "health"},
        versions=_versions(
            {"alpha": 1e-3, "eta0": 0.001},
            {"alpha": 1e-4, "eta0": 0.01},
            {"penalty": "l1", "alpha": 0.1, "eta0": 0.01},
            {"loss": "huber", "epsilon": 20.0, "eta0": 0.01},
            {"penalty": "elasticnet", "alpha": 0.01, "eta0": 0.005, "learning_rate": "constant"},
            {"alpha": 1e-2, "eta0": 0.02, "power_t": 0.35},
            {"loss": "epsilon_insensitive", "epsilon": 5.0, "eta0": 0.1},
            {"alpha": 1e-4, "eta0": 0.003, "learning_rate": "constant", "average": True},
        ),
    ),
    Recipe(
        model_name="wine-classifier",
        dataset="wine",
        estimator=MLPClassifier,
        train=_epochs,
        description=(
            "Tells apart three wine cultivars from 13 chemical measurements.\n\nA small multi-layer perceptron "
            "trained with Adam, one `partial_fit` epoch per step."
        ),
        selection=("val_accuracy", "-val_loss"),
        tags={"task": "classification", "framework": "scikit-learn", "team": "oenology"},
        versions=_versions(
            {"hidden_layer_sizes": (8,), "learning_rate_init": 0.001},
            {"hidden_layer_sizes": (16,), "learning_rate_init": 0.01},
            {"hidden_layer_sizes": (32,), "learning_rate_init": 0.003, "alpha": 1e-3},
            {"hidden_layer_sizes": (64, 32), "learning_rate_init": 0.001, "alpha": 1e-3},
            {"hidden_layer_sizes": (16, 16), "learning_rate_init": 0.01, "activation": "tanh"},
            {"hidden_layer_sizes": (32,), "solver": "sgd", "learning_rate_init": 0.05, "momentum": 0.9},
            {"hidden_layer_sizes": (8, 8), "learning_rate_init": 0.02, "alpha": 1e-2},
            {"hidden_layer_sizes": (128,), "learning_rate_init": 0.0005},
        ),
    ),
    Recipe(
        model_name="digits-recognizer",
        dataset="digits",
        estimator=MLPClassifier,
        train=_epochs,
        description=(
            "Reads handwritten digits from 8x8 grey-level images (64 pixel intensities from 0 to 16).\n\n"
            "A multi-layer perceptron trained in mini-batches, one `partial_fit` epoch per step."
        ),
        selection=("val_accuracy", "-val_loss"),
        tags={"task": "classification", "framework": "scikit-learn", "team": "vision"},
        versions=_versions(
            {"hidden_layer_sizes": (16,), "learning_rate_init": 0.001, "batch_size": 256},
            {"hidden_layer_sizes": (32,), "learning_rate_init": 0.01, "batch_size": 256},
            {"hidden_layer_sizes": (32,), "learning_rate_init": 0.003, "batch_size": 512, "alpha": 1e-3},
            {"hidden_layer_sizes": (32,), "solver": "sgd", "learning_rate_init": 0.05, "momentum": 0.9},
            {"hidden_layer_sizes": (32, 16), "learning_rate_init": 0.002, "batch_size": 256},
            {"hidden_layer_sizes": (48,), "learning_rate_init": 0.005, "batch_size": 256, "activation": "tanh"},
            {"hidden_layer_sizes": (24,), "learning_rate_init": 0.02, "batch_size": 512, "alpha": 1e-2},
            {"hidden_layer_sizes": (64,), "learning_rate_init": 0.002, "batch_size": 512},
        ),
    ),
]


@dataclass(frozen=True)
class Size:
    models: int
    versions: int
    steps: int


SIZES = {
    "small": Size(models=3, versions=6, steps=100),
    "full": Size(models=len(RECIPES), versions=8, steps=120),
}
