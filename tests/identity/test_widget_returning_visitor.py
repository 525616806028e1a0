"""A returning signed-in visitor: on PostgreSQL one statement answers when nothing is to be
written but last-seen (identity.services._returning_visitor); anything else takes the full
identify. These run on both databases: on SQLite every identify takes the full path, and the
outcome must be the same."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from attributes.models import AttributeDefinition
from contacts.models import AuditEvent, Contact, Identity, MergedContact
from core.prepared import prepared
from identity.models import VisitorSession
from tests.factories import ContactFactory
from tests.identity.conftest import Widget, make_jwt

pytestmark = pytest.mark.django_db

CLAIMS = {"name": "Ada Lovelace", "email": "ada@example.com"}


@pytest.fixture
def signed_in(agent, settings):
    """A browser that signed in as u-1, its session and contact, and its last-seen moved back
    so the next identify shows whether it marked them seen."""
    settings.WIDGET_RATE_LIMIT_PER_ADDRESS = "1000000/minute"
    widget = Widget(agent)
    assert widget.jwt(user_id="u-1", contact_attributes=CLAIMS).status_code == 200
    contact = Contact.objects.get(agent=agent, external_id="u-1")
    long_ago = timezone.now() - timedelta(days=3)
    Contact.objects.filter(pk=contact.pk).update(last_seen_at=long_ago)
    VisitorSession.objects.filter(agent=agent).update(last_seen_at=long_ago)
    session = VisitorSession.objects.get(agent=agent, visitor_id=widget.visitor_id)
    return widget, session, contact, long_ago


def _state(contact, session):
    contact.refresh_from_db()
    session.refresh_from_db()
    return contact, session


def test_nothing_new_answers_like_the_first_identify_and_writes_only_last_seen(
    signed_in, django_assert_num_queries
):
    widget, session, contact, long_ago = signed_in
    assert widget.jwt(user_id="u-1", contact_attributes=CLAIMS).status_code == 200
    Contact.objects.filter(pk=contact.pk).update(last_seen_at=long_ago)
    VisitorSession.objects.filter(pk=session.pk).update(last_seen_at=long_ago)
    audits = AuditEvent.objects.filter(contact_id=contact.pk).count()
    # The agent and its secrets are kept from the calls before: the rate counters, then one
    # statement on PostgreSQL (see test_widget_http for what SQLite runs).
    expected = 2 if connection.vendor == "postgresql" else 6
    token = make_jwt(widget.agent, user_id="u-1", contact_attributes=CLAIMS)
    with django_assert_num_queries(expected):
        response = widget.identify({"token": token})
    assert response.status_code == 200
    body = response.json()
    assert body["contact"] == {
        "id": str(contact.pk),
        "name": "Ada Lovelace",
        "identity": "verified",
    }
    assert body["ignored_keys"] == []
    contact, session = _state(contact, session)
    assert contact.last_seen_at > long_ago
    assert session.last_seen_at > long_ago
    assert (session.contact_id, session.signed) == (contact.pk, True)
    assert AuditEvent.objects.filter(contact_id=contact.pk).count() == audits


def test_the_returning_answer_lists_ignored_keys_as_the_full_path_does(signed_in):
    widget, _, _, _ = signed_in
    response = widget.jwt(user_id="u-1", contact_attributes={**CLAIMS, "created_at": "2020-01-01"})
    assert response.status_code == 200
    assert [entry["key"] for entry in response.json()["ignored_keys"]] == ["created_at"]


def test_a_changed_field_is_written_and_audited(signed_in):
    widget, _, contact, _ = signed_in
    response = widget.jwt(user_id="u-1", contact_attributes={**CLAIMS, "name": "Ada King"})
    assert response.json()["contact"]["name"] == "Ada King"
    contact.refresh_from_db()
    assert contact.name == "Ada King"
    update = AuditEvent.objects.filter(contact_id=contact.pk, action="updated").get()
    assert update.changes["name"] == ["Ada Lovelace", "Ada King"]


def test_a_new_attribute_is_created_and_stored(signed_in, agent):
    widget, _, contact, _ = signed_in
    response = widget.jwt(user_id="u-1", contact_attributes={**CLAIMS, "seats": 12})
    assert response.status_code == 200
    assert AttributeDefinition.objects.filter(agent=agent, key="seats").exists()
    contact.refresh_from_db()
    assert contact.attributes["seats"] == 12


def test_invalid_input_for_a_returning_user_is_refused_and_writes_nothing(signed_in, agent):
    widget, session, contact, long_ago = signed_in
    response = widget.jwt(user_id="u-1", contact_attributes={**CLAIMS, "email": "not-an-email"})
    assert response.status_code == 400
    assert "contact_attributes.email" in response.json()["error"]["fields"]
    contact, session = _state(contact, session)
    assert contact.last_seen_at == long_ago
    assert session.last_seen_at == long_ago
    assert contact.email == "ada@example.com"


def test_another_user_signing_in_on_the_same_browser_gets_the_session(signed_in, agent):
    widget, session, first, _ = signed_in
    # u-2 signed in before, on a browser of their own.
    assert Widget(agent).jwt(user_id="u-2", contact_attributes={"name": "Grace Hopper"})
    response = widget.jwt(user_id="u-2", contact_attributes={"name": "Grace Hopper"})
    second = Contact.objects.get(agent=agent, external_id="u-2")
    assert response.json()["contact"]["id"] == str(second.pk)
    first, session = _state(first, session)
    assert (session.contact_id, session.signed) == (second.pk, True)
    # Someone else's verified contact keeps everything: nothing merged, still verified.
    assert first.deleted_at is None
    assert first.identity == Identity.VERIFIED
    assert not MergedContact.objects.filter(id=first.pk).exists()


def test_a_session_that_did_not_sign_for_the_contact_signs_now(signed_in):
    """The contact became this session's without its signature (a merge, say): the session
    must not stand for it until it signs, and a valid signature now makes it so."""
    widget, session, contact, _ = signed_in
    VisitorSession.objects.filter(pk=session.pk).update(signed=False)
    response = widget.jwt(user_id="u-1", contact_attributes=CLAIMS)
    assert response.json()["contact"]["id"] == str(contact.pk)
    contact, session = _state(contact, session)
    assert (session.contact_id, session.signed) == (contact.pk, True)


def test_a_self_reported_twin_waiting_is_folded_in(signed_in, agent):
    widget, _, contact, _ = signed_in
    twin = ContactFactory(
        agent=agent,
        email="ADA@example.com",
        identity=Identity.SELF_REPORTED,
        external_id=None,
        name="",
    )
    response = widget.jwt(user_id="u-1", contact_attributes=CLAIMS)
    assert response.json()["contact"]["id"] == str(contact.pk)
    assert MergedContact.objects.filter(id=twin.pk, into_id=contact.pk).exists()
    assert not Contact.objects.filter(pk=twin.pk).exists()


def test_a_soft_deleted_user_is_restored(signed_in):
    widget, session, contact, long_ago = signed_in
    Contact.objects.filter(pk=contact.pk).update(deleted_at=timezone.now())
    response = widget.jwt(user_id="u-1", contact_attributes=CLAIMS)
    assert response.json()["contact"]["id"] == str(contact.pk)
    contact, session = _state(contact, session)
    assert contact.deleted_at is None
    assert contact.last_seen_at > long_ago
    assert AuditEvent.objects.filter(contact_id=contact.pk, action="restored").exists()


def test_new_session_context_alone_is_one_more_statement(signed_in, django_assert_num_queries):
    """A site that sends the page or the cart as user_metadata changes the context on every
    call: on PostgreSQL the returning visitor's statement and one UPDATE of the session."""
    widget, session, contact, _ = signed_in
    widget.identify({"token": widget_token(widget, CLAIMS), "user_metadata": {"page": "/a"}})
    token = widget_token(widget, CLAIMS)
    audits = AuditEvent.objects.filter(contact_id=contact.pk).count()
    expected = 3 if connection.vendor == "postgresql" else 7
    with django_assert_num_queries(expected):
        response = widget.identify({"token": token, "user_metadata": {"page": "/b"}})
    assert response.json()["session_context"] == {"page": "/b"}
    session.refresh_from_db()
    assert session.context == {"page": "/b"}
    assert (session.contact_id, session.signed) == (contact.pk, True)
    assert AuditEvent.objects.filter(contact_id=contact.pk).count() == audits


def test_new_session_context_replaces_the_old(signed_in):
    widget, session, _, _ = signed_in
    widget.identify(
        {
            "token": widget_token(widget, CLAIMS),
            "user_metadata": {"plan": "trial"},
        }
    )
    widget.identify(
        {
            "token": widget_token(widget, CLAIMS),
            "user_metadata": {"plan": "paid"},
        }
    )
    session.refresh_from_db()
    assert session.context == {"plan": "paid"}
    # And sent again unchanged, it stays; sent without, it goes.
    widget.identify({"token": widget_token(widget, CLAIMS), "user_metadata": {"plan": "paid"}})
    session.refresh_from_db()
    assert session.context == {"plan": "paid"}
    widget.identify({"token": widget_token(widget, CLAIMS)})
    session.refresh_from_db()
    assert session.context is None


def widget_token(widget: Widget, attributes: dict) -> str:
    return make_jwt(widget.agent, user_id="u-1", contact_attributes=attributes)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement path")
@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_statement_commits_alone_and_relaxes_only_itself(
    signed_in, agent
):
    """As in production (no request transaction): the returning visitor's statement is its
    own transaction. Its writes are committed when the response leaves, and the relaxed
    commit it asks for ends with it: the connection's next transaction (a dashboard edit
    served by the same process) waits for the disk again."""
    widget, _, contact, long_ago = signed_in

    token = make_jwt(agent, user_id="u-1", contact_attributes=CLAIMS)
    with CaptureQueriesContext(connection) as queries:
        response = widget.identify({"token": token})

    assert response.status_code == 200
    statements = [q["sql"] for q in queries.captured_queries]
    assert statements[-1].startswith(prepared("WITH contact AS (UPDATE contacts_contact")), (
        statements
    )
    assert not connection.in_atomic_block
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"
    # Another connection sees the commit.
    import psycopg

    db = connection.settings_dict
    conninfo = (
        f"host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} user={db['USER']} "
        f"dbname={db['NAME']}"
    )
    with psycopg.connect(conninfo) as other:
        seen = other.execute(
            "SELECT last_seen_at FROM contacts_contact WHERE id = %s", [contact.pk]
        ).fetchone()[0]
    assert seen > long_ago


def test_an_hmac_returning_visitor_answers_as_the_full_path_and_never_writes_a_secure_key(
    agent, settings, django_assert_num_queries
):
    """HMAC comes through the same returning-visitor path: the secure attribute in its
    user_metadata is listed as ignored on every call and never written, and a hash that does
    not verify reaches nothing, however well the browser is known."""
    from tests.factories import AttributeFactory
    from tests.identity.conftest import user_hash

    settings.WIDGET_RATE_LIMIT_PER_ADDRESS = "1000000/minute"
    AttributeFactory(agent=agent, key="plan", type="text", secure=True)
    widget = Widget(agent)
    body = {
        "user_id": "u-7",
        "user_hash": user_hash(agent, "u-7"),
        "user_metadata": {"name": "Grace Hopper", "plan": "enterprise"},
    }
    first = widget.identify(body)
    assert first.status_code == 200
    contact = Contact.objects.get(agent=agent, external_id="u-7")
    audits = AuditEvent.objects.filter(contact_id=contact.pk).count()

    # the rate counters, the schema (the metadata names an attribute) and one statement on
    # PostgreSQL; the full path on SQLite
    with django_assert_num_queries(3 if connection.vendor == "postgresql" else 6):
        again = widget.identify(body)

    assert again.status_code == 200
    assert again.json()["contact"] == first.json()["contact"]
    assert again.json()["ignored_keys"] == first.json()["ignored_keys"]
    assert [entry["code"] for entry in again.json()["ignored_keys"]] == ["secure_attribute"]
    contact.refresh_from_db()
    assert "plan" not in contact.attributes
    assert AuditEvent.objects.filter(contact_id=contact.pk).count() == audits

    forged = widget.identify({**body, "user_hash": "0" * 64})
    assert forged.status_code == 401
    session = VisitorSession.objects.get(agent=agent, visitor_id=widget.visitor_id)
    assert (session.contact_id, session.signed) == (contact.pk, True)
