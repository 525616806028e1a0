"""The copy-paste snippets of the settings page, run as a customer would run them."""

from __future__ import annotations

import shutil
import subprocess
from types import SimpleNamespace

import pytest

from contacts.models import Contact
from identity import snippets
from tests.factories import AttributeFactory
from tests.identity.conftest import secret_of, user_hash

pytestmark = pytest.mark.django_db

NODE = shutil.which("node")


def _run_python(code: str, function: str, argument, monkeypatch, secret: str):
    monkeypatch.setenv(snippets.SECRET_ENV, secret)
    namespace: dict = {}
    exec(compile(code, f"<{function}>", "exec"), namespace)  # noqa: S102 - our own snippet
    return namespace[function](argument)


def test_the_python_jwt_snippet_signs_a_token_identify_accepts(widget, agent, monkeypatch):
    AttributeFactory(agent=agent, key="plan", type="text", secure=True)
    user = SimpleNamespace(id=77, name="Ada Lovelace", email="ada@example.com", plan="pro")
    token = _run_python(snippets.PYTHON_JWT, "rapport_token", user, monkeypatch, secret_of(agent))
    response = widget.identify({"token": token})
    assert response.status_code == 200, response.content
    contact = Contact.objects.get(agent=agent)
    assert (contact.external_id, contact.name, contact.attributes) == (
        "77",
        "Ada Lovelace",
        {"plan": "pro"},
    )
    assert contact.identity == "verified"


def test_the_python_hmac_snippet_computes_the_expected_hash(widget, agent, monkeypatch):
    computed = _run_python(
        snippets.PYTHON_HMAC, "rapport_user_hash", 77, monkeypatch, secret_of(agent)
    )
    assert computed == user_hash(agent, "77")
    assert widget.identify({"user_id": 77, "user_hash": computed}).status_code == 200


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_node_hmac_snippet_computes_the_same_hash(agent):
    program = snippets.NODE_HMAC + "\nprocess.stdout.write(rapportUserHash(77));\n"
    result = subprocess.run(  # noqa: S603 - fixed program, our own snippet
        [NODE, "-e", program],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env={snippets.SECRET_ENV: secret_of(agent), "PATH": "/usr/bin:/bin"},
    )
    assert result.stdout == user_hash(agent, "77")


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_node_jwt_snippet_is_valid_javascript():
    # jsonwebtoken is not installed here; check the snippet parses and calls it as documented.
    result = subprocess.run(  # noqa: S603
        [NODE, "--check", "-"], input=snippets.NODE_JWT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert 'algorithm: "HS256"' in snippets.NODE_JWT
    assert "expiresIn" in snippets.NODE_JWT


def test_no_snippet_contains_a_secret(agent):
    secret = secret_of(agent)
    texts = [s.code for s in snippets.server_snippets()]
    texts.append(snippets.page_snippet(widget_url="https://x/w.js", agent_public_id="ag_x"))
    assert all(secret not in text for text in texts)
