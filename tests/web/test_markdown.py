"""Markdown from users is rendered, then sanitised: nothing executable reaches the page."""

from __future__ import annotations

from django.template import Context, Template
from django.utils.safestring import SafeString

from registry.web.markdown import render_markdown


def test_renders_common_markdown():
    html = render_markdown("# Title\n\nSome **bold** and `code`.\n\n- one\n- two\n\n```\nx = 1\n```")
    assert "<h1>Title</h1>" in html
    assert "<strong>bold</strong>" in html
    assert "<code>code</code>" in html
    assert "<li>one</li>" in html
    assert "<pre><code>x = 1\n</code></pre>" in html
    assert isinstance(html, SafeString)


def test_renders_tables():
    html = render_markdown("| a | b |\n|---|---|\n| 1 | 2 |")
    assert "<table>" in html and "<td>1</td>" in html


def test_script_tags_are_removed_with_their_content():
    html = render_markdown("Hello <script>alert('x')</script> world")
    assert "<script" not in html
    assert "alert" not in html
    assert "Hello" in html and "world" in html


def test_links_are_kept_with_a_safe_rel():
    html = render_markdown("[docs](https://example.com/docs) and <mailto:team@example.com>")
    assert '<a href="https://example.com/docs" rel="noopener noreferrer nofollow">docs</a>' in html
    assert 'href="mailto:team@example.com"' in html


def test_dangerous_urls_attributes_and_tags_are_stripped():
    html = render_markdown(
        '[click](javascript:alert(1)) <img src=x onerror=alert(1)> <a href="#" onclick="steal()">a</a>'
        ' <iframe src="https://evil.example"></iframe> <style>body{}</style> <div style="position:fixed">d</div>'
    )
    assert "javascript:" not in html
    assert "onerror" not in html and "onclick" not in html
    assert "<img" not in html and "<iframe" not in html and "<style" not in html
    assert "style=" not in html


def test_empty_text_renders_nothing():
    assert render_markdown("") == ""
    assert render_markdown(None) == ""


def test_template_filter():
    html = Template("{% load registry_tags %}{{ text|markdown }}").render(
        Context({"text": "*hi* <script>x()</script>"})
    )
    assert html == "<p><em>hi</em> </p>"
