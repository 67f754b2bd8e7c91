"""How a model's name travels in a dashboard URL (`/models/<name>/`).

Names `.` and `..` are refused now (registry.lib.names), but a registry may still hold one from before. A browser
folds `/models/../` into `/` (and `%2E%2E` too), so such a model could never be opened. Those two names travel as
`@.` and `@..`: no model name has ever been allowed to contain `@`, so the escape cannot clash with a real name.
"""

from __future__ import annotations

from django.urls.converters import StringConverter

_DOT_NAMES = {".": "@.", "..": "@.."}
_FROM_URL = {escaped: name for name, escaped in _DOT_NAMES.items()}


class ModelNameConverter(StringConverter):
    def to_python(self, value: str) -> str:
        return _FROM_URL.get(value, value)

    def to_url(self, value: str) -> str:
        return _DOT_NAMES.get(value, value)
