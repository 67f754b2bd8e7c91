"""The globals a pickle may import and still be called safe, by module and name. Reviewed, not inferred.

A pickle can only run code through the callables it imports, so a pickle whose imports are all listed here loads
without running anything but these: constructors of plain containers, NumPy's array and dtype rebuilders, and
scikit-learn estimators whose `__setstate__` only assigns attributes. Whole packages are never listed
(`sklearn.*` would admit `sklearn.utils._testing`, `sklearn.externals`, anything reachable), and entries are added
one by one, with the estimator's *defining* module (what `pickle` records: `sklearn.linear_model._logistic`, not
`sklearn.linear_model`).

Both NumPy 1 (`numpy.core`) and NumPy 2 (`numpy._core`) spellings are listed: models pickled on either load on
either. Deployments that pickle their own classes add them with `SCAN_EXTRA_ALLOWED_GLOBALS`
("package.module:Class,other.module:func"), after reviewing them as this list was.

No Django here.
"""

from __future__ import annotations

_NUMPY = {f"numpy.{core}.multiarray": {"_reconstruct", "scalar"} for core in ("core", "_core")} | {
    "numpy": {"dtype", "ndarray"},
    "numpy.core.numeric": {"_frombuffer"},
    "numpy._core.numeric": {"_frombuffer"},
    # Random generators kept by estimators (random_state): rebuilt from their state, no code.
    "numpy.random._pickle": {"__bit_generator_ctor", "__randomstate_ctor", "__generator_ctor"},
    "numpy.random._mt19937": {"MT19937"},
    "numpy.random._pcg64": {"PCG64", "PCG64DXSM"},
    "numpy.random._philox": {"Philox"},
    "numpy.random._sfc64": {"SFC64"},
    "numpy.random.bit_generator": {"SeedSequence", "__pyx_unpickle_SeedSequence"},
    "numpy.random.mtrand": {"RandomState"},
}

_PYTHON = {
    "builtins": {
        *("set", "frozenset", "complex", "slice", "bytearray", "range", "object", "bytes", "dict", "list", "tuple"),
        *("str", "int", "float", "bool", "NoneType"),
    },
    "collections": {"OrderedDict", "defaultdict", "deque"},
    "copyreg": {"_reconstructor"},  # protocol 0-1 objects: rebuilds an instance of an allowlisted class
    "datetime": {"datetime", "date", "time", "timedelta", "timezone"},
    "decimal": {"Decimal"},
    "fractions": {"Fraction"},
}

_JOBLIB = {
    "joblib.numpy_pickle": {"NumpyArrayWrapper"},
}

# PyTorch state dicts (torch.save(model.state_dict())): tensors rebuilt from typed storages; never torch.load or
# torch.jit helpers.
_TORCH = {
    "torch._utils": {"_rebuild_tensor_v2", "_rebuild_parameter"},
    "torch": {
        *("FloatStorage", "DoubleStorage", "HalfStorage", "BFloat16Storage", "LongStorage", "IntStorage"),
        *("ShortStorage", "CharStorage", "ByteStorage", "BoolStorage", "Size"),
    },
}

_SCIPY = {
    "scipy.sparse._csr": {"csr_matrix", "csr_array"},
    "scipy.sparse._csc": {"csc_matrix", "csc_array"},
    "scipy.sparse._coo": {"coo_matrix", "coo_array"},
}

# scikit-learn: the demo's models first (registry/demo/recipes.py), then common estimators by defining module.
_SKLEARN = {
    # The demo: Pipeline(StandardScaler, SGD*/GradientBoosting*/MLP*) and what they keep inside.
    "sklearn.pipeline": {"Pipeline", "FeatureUnion"},
    "sklearn.preprocessing._data": {"StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler", "Normalizer"},
    "sklearn.preprocessing._label": {"LabelBinarizer", "LabelEncoder", "MultiLabelBinarizer"},
    "sklearn.preprocessing._encoders": {"OneHotEncoder", "OrdinalEncoder"},
    "sklearn.linear_model._stochastic_gradient": {"SGDClassifier", "SGDRegressor"},
    "sklearn.linear_model._sgd_fast": {
        "Hinge",
        "Log",
        "ModifiedHuber",
        "SquaredHinge",
        "SquaredLoss",
        "Huber",
        "EpsilonInsensitive",
        "SquaredEpsilonInsensitive",
    },
    "sklearn.ensemble._gb": {"GradientBoostingClassifier", "GradientBoostingRegressor"},
    "sklearn.dummy": {"DummyClassifier", "DummyRegressor"},
    "sklearn.neural_network._multilayer_perceptron": {"MLPClassifier", "MLPRegressor"},
    "sklearn.neural_network._stochastic_optimizers": {"AdamOptimizer", "SGDOptimizer"},
    "sklearn.tree._classes": {
        "DecisionTreeClassifier",
        "DecisionTreeRegressor",
        "ExtraTreeClassifier",
        "ExtraTreeRegressor",
    },
    "sklearn.tree._tree": {"Tree"},
    "sklearn._loss.loss": {
        "HalfSquaredError",
        "AbsoluteError",
        "PinballLoss",
        "HuberLoss",
        "HalfPoissonLoss",
        "HalfGammaLoss",
        "HalfTweedieLoss",
        "HalfBinomialLoss",
        "HalfMultinomialLoss",
        "ExponentialLoss",
    },
    "sklearn._loss._loss": {
        "CyHalfSquaredError",
        "__pyx_unpickle_CyHalfSquaredError",
        "CyAbsoluteError",
        "__pyx_unpickle_CyAbsoluteError",
        "CyPinballLoss",
        "__pyx_unpickle_CyPinballLoss",
        "CyHuberLoss",
        "__pyx_unpickle_CyHuberLoss",
        "CyHalfPoissonLoss",
        "__pyx_unpickle_CyHalfPoissonLoss",
        "CyHalfBinomialLoss",
        "__pyx_unpickle_CyHalfBinomialLoss",
        "CyHalfMultinomialLoss",
        "__pyx_unpickle_CyHalfMultinomialLoss",
        "CyExponentialLoss",
        "__pyx_unpickle_CyExponentialLoss",
    },
    "sklearn._loss.link": {"Interval", "IdentityLink", "LogLink", "LogitLink", "MultinomialLogit", "HalfLogitLink"},
    # Common estimators beyond the demo.
    "sklearn.linear_model._logistic": {"LogisticRegression"},
    "sklearn.linear_model._base": {"LinearRegression"},
    "sklearn.linear_model._ridge": {"Ridge", "RidgeClassifier"},
    "sklearn.linear_model._coordinate_descent": {"Lasso", "ElasticNet"},
    "sklearn.ensemble._forest": {
        "RandomForestClassifier",
        "RandomForestRegressor",
        "ExtraTreesClassifier",
        "ExtraTreesRegressor",
    },
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting": {
        "HistGradientBoostingClassifier",
        "HistGradientBoostingRegressor",
    },
    "sklearn.svm._classes": {"SVC", "SVR", "LinearSVC", "LinearSVR"},
    "sklearn.neighbors._classification": {"KNeighborsClassifier"},
    "sklearn.neighbors._regression": {"KNeighborsRegressor"},
    "sklearn.naive_bayes": {"GaussianNB", "MultinomialNB", "BernoulliNB"},
    "sklearn.decomposition._pca": {"PCA"},
    "sklearn.cluster._kmeans": {"KMeans"},
    "sklearn.compose._column_transformer": {"ColumnTransformer"},
    "sklearn.impute._base": {"SimpleImputer"},
}

ALLOWED_GLOBALS: dict[str, frozenset[str]] = {
    module: frozenset(names)
    for group in (_PYTHON, _NUMPY, _JOBLIB, _TORCH, _SCIPY, _SKLEARN)
    for module, names in group.items()
}

# What these calls do, for findings that a person reads ("calls os.system (runs a shell command)").
DANGEROUS_MEANING = {
    "os": "runs commands or touches files",
    "posix": "runs commands or touches files",
    "nt": "runs commands or touches files",
    "subprocess": "runs a command",
    "builtins": "evaluates code or opens files",
    "__builtin__": "evaluates code or opens files",
    "socket": "opens a network connection",
    "pty": "spawns a shell",
    "runpy": "runs a module",
    "shutil": "moves or deletes files",
}


def parse_extra(text: str) -> dict[str, frozenset[str]]:
    """'pkg.mod:Class, other.mod:func' → {'pkg.mod': {'Class'}, ...}; raises ValueError naming a bad entry."""
    extra: dict[str, set[str]] = {}
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        module, sep, name = entry.partition(":")
        if not sep or not module or not name or "*" in entry:
            raise ValueError(f"{entry!r}: write each allowed global as module:name (no wildcards)")
        extra.setdefault(module, set()).add(name)
    return {module: frozenset(names) for module, names in extra.items()}


def is_allowed(module: str, name: str, extra: dict[str, frozenset[str]] | None = None) -> bool:
    return name in ALLOWED_GLOBALS.get(module, ()) or bool(extra and name in extra.get(module, ()))
