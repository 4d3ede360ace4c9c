"""Mustache-style `{{variable}}` rendering of agent templates (pure, synchronous)."""

from __future__ import annotations

import pytest

from voxcall.protocol.templates import TemplateError, render, render_value, variables


def test_variables_and_values() -> None:
    context = {"name": "Ada", "n": 3, "vip": True, "none": None, "user": {"phone": "+1555", "tags": ["a", "b"]}}
    text = "Hi {{name}}, {{ n }} calls, vip={{vip}}, [{{none}}], {{user.phone}} {{{user.tags}}} {{& name}}{{! a comment }}."
    assert render(text, context) == 'Hi Ada, 3 calls, vip=true, [], +1555 ["a","b"] Ada.'
    assert variables(text) == ["name", "n", "vip", "none", "user.phone", "user.tags"]


def test_missing_variables_render_empty_and_are_reported_once() -> None:
    missing: list[str] = []
    assert render("{{a}}-{{b.c}}-{{a}}-{{x.y}}", {"b": {}, "x": "not an object"}, missing) == "---"
    assert missing == ["a", "b.c", "x.y"]


def test_no_html_escaping_and_text_without_tags_is_unchanged() -> None:
    assert render("{{v}}", {"v": "<b>&'\""}) == "<b>&'\""
    assert render("plain { text } with {single} braces", {}) == "plain { text } with {single} braces"


@pytest.mark.parametrize("text", ["{{#items}}x{{/items}}", "{{^a}}b{{/a}}", "{{> partial}}", "{{=<% %>=}}", "{{ }}", "{{a b}}",
                                  "unclosed {{name", "{{{name}}"])
def test_unsupported_or_malformed_tags_are_refused(text: str) -> None:
    with pytest.raises(TemplateError):
        variables(text)
    with pytest.raises(TemplateError):
        render(text, {"name": "x", "a": 1, "items": [1]})


def test_render_value_keeps_the_json_shape() -> None:
    missing: list[str] = []
    value = {"to": "{{user.email}}", "ids": ["{{id}}", 7], "flag": False, "deep": {"k": "{{nope}}"}}
    assert render_value(value, {"user": {"email": "a@b.c"}, "id": 42}, missing) == {
        "to": "a@b.c", "ids": ["42", 7], "flag": False, "deep": {"k": ""}}
    assert missing == ["nope"]
