"""The client checks names and paths with the server's rules (registry_client.rules) before sending anything."""

from __future__ import annotations

import pytest
from registry_client import Registry, RegistryError

from registry.catalog.models import ArtifactFile, ModelAlias, RegisteredModel
from tests.client.test_client import free_port

BAD_MODEL_NAMES = ["..", ".", "a%2Fb", "a%252Fb", "a\\b", "a?b", "a#b", "abc\u202edef"]


@pytest.fixture
def offline() -> Registry:
    """A registry address where nothing listens: a request would be a connection error, not a 'bad_request'."""
    return Registry(f"http://127.0.0.1:{free_port()}", "t", retries=0)


@pytest.mark.parametrize("name", BAD_MODEL_NAMES)
def test_bad_model_names_are_refused_before_sending(offline, name):
    for call in (lambda: offline.create_model(name), lambda: offline.register_model(name, run_id="0" * 32)):
        with pytest.raises(RegistryError) as caught:
            call()
        assert (caught.value.status, caught.value.code) == (None, "bad_request")
        assert "model name" in caught.value.message


@pytest.mark.parametrize("alias", ["v1", "latest", "a.b", "a\u202eb"])
def test_bad_aliases_are_refused_before_sending(offline, alias):
    with pytest.raises(RegistryError) as caught:
        offline.set_alias("fraud", alias, 1)
    assert caught.value.code == "bad_request"


@pytest.mark.parametrize(("path", "words"), [("/tmp", "relative"), ("file:///x", "URL scheme"), ("a//b", "segments")])
def test_bad_artifact_folders_are_refused_before_sending(offline, path, words):
    with pytest.raises(RegistryError) as caught:
        offline.register_model("fraud", run_id="0" * 32, artifact_path=path)
    assert caught.value.code == "invalid_path" and words in caught.value.message


def test_bad_tag_keys_are_refused_before_sending(offline):
    with pytest.raises(RegistryError, match="'#'"):
        offline.create_model("fraud", tags={"#x": "1"})
    with pytest.raises(RegistryError, match="'..'"):
        offline.start_run(tags={"..": "1"})


def test_a_folder_with_a_bad_file_name_goes_up_whole_or_not_at_all(registry, tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(b"w")
    (tmp_path / "model" / "evil\u202etxt.exe").write_bytes(b"x")
    with registry.start_run(experiment="names") as run:
        with pytest.raises(RegistryError) as caught:
            run.log_artifact(tmp_path / "model")
        assert caught.value.code == "invalid_path" and "U+202E" in caught.value.message
    assert not ArtifactFile.objects.exists()


def test_good_names_go_through(registry, tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "MLmodel").write_text("flavors: {}")
    with registry.start_run(experiment="My Experiment", tags={"team/owner": "risk"}) as run:
        run.log_artifact(tmp_path / "model")
        version = run.register_model("UpdateRMTest 2", artifact_path="model/")
    registry.set_alias("UpdateRMTest 2", "champion_2", version["version"])
    assert RegisteredModel.objects.get().name == "UpdateRMTest 2"
    assert ModelAlias.objects.get().alias == "champion_2"
