"""Issue 12's names in the dashboard: the new-model form refuses each shape beside the name field and stores nothing;
a model named `.` or `..` from before the rule still gets a link a browser will not fold away."""

from __future__ import annotations

import html

import pytest
from django.urls import reverse

from registry.catalog import services as catalog
from registry.catalog.models import RegisteredModel
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SHAPES = [
    ("..", "must not be '..'"),
    (".", "must not be '.'"),
    ("a%2Fb", "'%'"),
    ("a%252Fb", "'%'"),
    ("a\\b", "'\\\\'"),
    ("a?b", "'?'"),
    ("a#b", "'#'"),
    ("abc\u202edef", "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
]


@pytest.fixture
def otto(client):
    user = UserFactory(username="otto")
    client.force_login(user)
    return user


@pytest.mark.parametrize(("name", "words"), SHAPES)
def test_the_new_model_form_refuses_each_shape_beside_the_name(client, otto, name, words):
    response = client.post("/new-model/", {"name": name})
    assert response.status_code == 422
    page = html.unescape(response.content.decode())
    assert words in page
    assert 'aria-invalid="true"' in page or "errorlist" in page  # shown as the name field's error
    assert not RegisteredModel.objects.exists()


def test_the_new_model_form_names_the_model_that_differs_only_in_case(client, otto):
    catalog.model_create(name="m1", by=otto)
    response = client.post("/new-model/", {"name": "M1"})
    assert response.status_code == 422
    assert "'m1' already exists" in html.unescape(response.content.decode())
    assert list(RegisteredModel.objects.values_list("name", flat=True)) == ["m1"]


@pytest.mark.parametrize(("legacy", "url"), [("..", "/models/@../"), (".", "/models/@./")])
def test_a_legacy_dot_name_links_to_a_page_that_opens(client, otto, legacy, url):
    """Rows from before the rule (`manage.py check_names` lists them): never a link like /models/../."""
    RegisteredModel.objects.create(name=legacy, owner=otto)  # as an older release could store it
    assert reverse("model_detail", args=[legacy]) == url
    listing = client.get("/models/").content.decode()
    assert f'href="{url}"' in listing
    assert 'href="/models/../"' not in listing and 'href="/models/./"' not in listing
    page = client.get(url)
    assert page.status_code == 200
    assert legacy in page.content.decode()
    assert client.get(f"{url}audit/").status_code == 200  # the model's other routes take the same escape


def test_ordinary_names_keep_their_plain_urls(client, otto):
    catalog.model_create(name="churn model v2", by=otto)
    assert reverse("model_detail", args=["churn model v2"]) == "/models/churn%20model%20v2/"
    assert client.get("/models/churn%20model%20v2/").status_code == 200


@pytest.mark.parametrize(("key", "words"), [("..", "'.' or '..'"), ("a?b", "'?'"), ("a\u202eb", "U+202E")])
def test_a_bad_tag_key_is_refused_beside_its_row(client, otto, key, words):
    catalog.model_create(name="churn", by=otto)
    response = client.post(
        "/models/churn/tags/", {"key": ["team", key], "value": ["risk", "x"]}, HTTP_HX_REQUEST="true"
    )
    page = html.unescape(response.content.decode())
    assert words in page and 'aria-invalid="true"' in page
    assert RegisteredModel.objects.get(name="churn").tags == {}
