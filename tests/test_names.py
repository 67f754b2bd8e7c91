"""The one name rule (registry.lib.names) and the client's copy of it (registry_client.rules)."""

from __future__ import annotations

import inspect

import pytest
from registry_client import rules as client_rules

from registry.lib import names, paths

# Every shape from issue 12's "Why" list, and a few more of the same families.
BAD_NAMES = [
    ("..", "must not be '..'"),
    (".", "must not be '.'"),
    ("a%2Fb", "'%'"),
    ("a%252Fb", "'%'"),
    ("a\\b", "'\\\\\\\\'"),
    ("a?b", "'\\?'"),
    ("a#b", "'#'"),
    ("a/b", "'/'"),
    ("abc\u202edef", "U\\+202E \\(RIGHT-TO-LEFT OVERRIDE\\)"),
    ("a\u200bb", "U\\+200B \\(ZERO WIDTH SPACE\\)"),
    ("a\u00a0b", "U\\+00A0 \\(NO-BREAK SPACE\\)"),
    ("a\u2028b", "U\\+2028"),
    ("a\ue000b", "U\\+E000"),
    ("a\x1bb", "control characters"),
    ("", "non-empty"),
    (" m", "white space"),
]

GOOD_NAMES = ["test_model", "CreateRMTest", "UpdateRMTest 2", "My Experiment", "churn-model.v2", "模型", "ü", "a:b"]


@pytest.mark.parametrize(("name", "message"), BAD_NAMES)
def test_bad_model_and_experiment_names(name, message):
    with pytest.raises(names.NameError_, match=message):
        names.check_model_name(name)
    with pytest.raises(names.NameError_, match=message):
        names.check_experiment_name(name)


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_ordinary_names_pass(name):
    """MLflow's own tests create names like these; none may be refused."""
    assert names.check_model_name(name) == name
    assert names.check_experiment_name(name) == name


def test_messages_say_what_to_do():
    with pytest.raises(names.NameError_) as caught:
        names.check_model_name("a\u202eb")
    assert "invisible" in str(caught.value) and "Remove it" in str(caught.value)
    with pytest.raises(names.NameError_) as caught:
        names.check_model_name("a%2Fb")
    assert "a%2Fb would read as a/b" in str(caught.value)


def test_model_names_keep_at_out_but_experiments_may_hold_it():
    with pytest.raises(names.NameError_, match="'@'"):
        names.check_model_name("churn@champion")
    assert names.check_experiment_name("alice@example.com runs") == "alice@example.com runs"


def test_length_limits():
    assert names.check_experiment_name("e" * names.EXPERIMENT_NAME_MAX)
    with pytest.raises(names.NameError_, match=f"at most {names.EXPERIMENT_NAME_MAX}"):
        names.check_experiment_name("e" * (names.EXPERIMENT_NAME_MAX + 1))


@pytest.mark.parametrize("key", ["mlflow.source.git.commit", "team/owner", "multiline tag", "a..a/._./o_O", ".a", "b."])
def test_good_tag_keys(key):
    """MLflow's own tag keys: dots, spaces and '/' as a namespace separator."""
    assert names.check_tag_key(key) == key


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("..", "'.' or '..'"),
        (".", "'.' or '..'"),
        ("/a", "start or end with '/'"),
        ("a/", "start or end with '/'"),
        ("a//b", "'//'"),
        ("a/../b", "'/../'"),
        ("a\\b", "'\\\\\\\\'"),
        ("a%2Fb", "'%'"),
        ("a?b", "'\\?'"),
        ("a#b", "'#'"),
        ("a\u202eb", "U\\+202E"),
    ],
)
def test_bad_tag_keys(key, message):
    with pytest.raises(names.NameError_, match=message):
        names.check_tag_key(key)


@pytest.mark.parametrize("key", ["val/loss", "a b", "准确率", "loss%", "f1@0.5"])
def test_metric_keys_stay_as_mlflow_allows(key):
    assert names.check_key(key, what="metric key") == key


@pytest.mark.parametrize("key", ["..", "a/../b", "a//b", "/a", "a\u202eb"])
def test_metric_keys_refuse_path_tricks_and_invisible_characters(key):
    with pytest.raises(names.NameError_, match="A metric key must"):
        names.check_key(key, what="metric key")


@pytest.mark.parametrize("alias", ["v1", "V12", "latest", "Production", "a.b", "a b", "champion\n", "x\u202e"])
def test_aliases_keep_the_mlflow_compatible_rule(alias):
    with pytest.raises(names.NameError_):
        names.check_alias(alias)


def test_case_clash_message_names_the_existing_one():
    message = names.case_clash_message("model", "M1", "m1")
    assert "'m1' already exists" in message and "ignoring case" in message and "'M1'" in message
    assert names.case_clash_message("model", "m1", "m1") == "A model 'm1' already exists; choose another name."


# --- The client's copy ----------------------------------------------------------------------------------------------

SHARED = [
    "describe_character",
    "unprintable_character",
    "_check_printable",
    "check_name",
    "check_model_name",
    "check_experiment_name",
    "case_clash_message",
    "_check_segments",
    "check_key",
    "check_tag_key",
    "check_alias",
    "fully_decoded",
    "check_artifact_path",
]


@pytest.mark.parametrize("function", SHARED)
def test_the_client_carries_the_same_rules(function):
    """registry_client/rules.py is a copy (the client never imports the server): the same source, function by
    function, and the same constants."""
    server = getattr(names, function, None) or getattr(paths, function)
    assert inspect.getsource(getattr(client_rules, function)) == inspect.getsource(server)


def test_the_client_has_the_same_limits_and_characters():
    for constant in ("MODEL_NAME_MAX", "EXPERIMENT_NAME_MAX", "KEY_MAX", "ALIAS_MAX", "NAME_FORBIDDEN", "_WHY"):
        assert getattr(client_rules, constant) == getattr(names, constant), constant
    assert client_rules.RESERVED_ALIASES == names.RESERVED_ALIASES
    assert client_rules._UNPRINTABLE_CATEGORIES == names._UNPRINTABLE_CATEGORIES
    assert client_rules._ALIAS.pattern == names._ALIAS.pattern
    assert client_rules._SCHEME.pattern == paths._SCHEME.pattern
    assert client_rules.PATH_MAX == paths.PATH_MAX


@pytest.mark.parametrize(("name", "message"), BAD_NAMES)
def test_the_client_refuses_what_the_server_refuses(name, message):
    with pytest.raises(client_rules.NameError_, match=message):
        client_rules.check_model_name(name)
