"""A signed identify adopts the contact the team already has (SPEC 6): no contact with the
user id yet, the signed payload's email matches exactly one live contact made through the
API, an import or the dashboard, without an external id: that contact gets the external
id and stays the same person, history and conversations included."""

from __future__ import annotations

import pytest

from contacts.models import AuditEvent, Contact
from contacts.services import contact_create, contact_soft_delete
from core.actors import Actor
from helpdesk.models import Conversation
from identity.models import VisitorSession
from tests.factories import ConversationFactory, UserFactory
from tests.helpers import contact_url
from tests.identity.conftest import Widget, make_jwt, user_hash

pytestmark = pytest.mark.django_db


def _made_by(agent, actor: Actor, **data) -> Contact:
    return contact_create(agent=agent, actor=actor, data=data).contact


def _staff():
    return Actor.staff(UserFactory(), is_admin=False)


@pytest.mark.parametrize(
    "actor_for",
    [
        pytest.param(lambda key: Actor.api(key), id="api"),
        pytest.param(lambda key: Actor.importer("people.csv"), id="import"),
        pytest.param(lambda key: _staff(), id="staff"),
    ],
)
def test_a_signed_identify_adopts_the_contact_the_team_made(widget, agent, key, actor_for):
    known = _made_by(agent, actor_for(key.api_key), name="Ada L.", email="ada@example.com")
    conversation = ConversationFactory(agent=agent, contact=known)

    response = widget.jwt(
        user_id="u-42", contact_attributes={"email": "ADA@example.com", "phone": "+44 20 7946 0958"}
    )

    assert response.status_code == 200
    assert response.json()["contact"]["id"] == str(known.pk)
    assert Contact.objects.filter(agent=agent).count() == 1
    known.refresh_from_db()
    assert known.external_id == "u-42"
    assert known.identity == "verified"
    assert known.identity_source == "jwt"  # the signature vouches for it now
    assert known.name == "Ada L."  # kept; the token did not name anyone
    assert known.phone == "+442079460958"
    assert Conversation.objects.get(pk=conversation.pk).contact_id == known.pk
    by_identify = AuditEvent.objects.filter(contact_id=known.pk, channel="jwt")
    assert [e.changes["external_id"] for e in by_identify if "external_id" in e.changes] == [
        [None, "u-42"]
    ]


def test_an_hmac_identify_adopts_too(agent, key):
    known = _made_by(agent, Actor.api(key.api_key), email="bob@example.com")
    widget = Widget(agent)
    response = widget.identify(
        {
            "user_id": "u-7",
            "user_hash": user_hash(agent, "u-7"),
            "user_metadata": {"email": "bob@example.com"},
        }
    )
    assert response.json()["contact"]["id"] == str(known.pk)
    known.refresh_from_db()
    assert (known.external_id, known.identity_source) == ("u-7", "hmac")


def test_the_same_user_again_updates_the_adopted_contact(widget, agent, key):
    known = _made_by(agent, Actor.api(key.api_key), email="ada@example.com")
    widget.jwt(user_id="u-42", contact_attributes={"email": "ada@example.com"})
    widget.jwt(user_id="u-42", contact_attributes={"email": "ada@example.com", "name": "Ada"})
    assert list(Contact.objects.filter(agent=agent).values_list("pk", "name")) == [
        (known.pk, "Ada")
    ]


@pytest.mark.parametrize(
    ("setup", "why"),
    [
        (
            lambda agent, key: _made_by(
                agent, Actor.api(key.api_key), email="ada@example.com", external_id="crm-1"
            ),
            "it already has an external id: another person in the customer's system",
        ),
        (
            lambda agent, key: contact_soft_delete(
                contact=_made_by(agent, Actor.api(key.api_key), email="ada@example.com"),
                actor=Actor.api(key.api_key),
            ),
            "it is deleted",
        ),
        (
            lambda agent, key: _made_by(agent, Actor.widget(), email="ada@example.com"),
            "a visitor typed it (self-reported): merged in, never adopted",
        ),
    ],
)
def test_what_is_not_adopted(widget, agent, key, setup, why):
    setup(agent, key)
    response = widget.jwt(user_id="u-42", contact_attributes={"email": "ada@example.com"})
    signed = Contact.objects.get(agent=agent, external_id="u-42")
    assert response.json()["contact"]["id"] == str(signed.pk)
    others = Contact.objects.filter(agent=agent).exclude(pk=signed.pk)
    assert all(c.external_id != "u-42" for c in others), why


def test_an_email_only_in_user_metadata_beside_a_jwt_adopts_nothing(widget, agent, key):
    """user_metadata next to a JWT is not signed: it cannot choose whom to adopt."""
    known = _made_by(agent, Actor.api(key.api_key), email="ada@example.com")
    widget.identify(
        {
            "token": make_jwt(agent, user_id="u-42"),
            "user_metadata": {"email": "ada@example.com"},
        }
    )
    known.refresh_from_db()
    assert known.external_id is None
    assert Contact.objects.filter(agent=agent, external_id="u-42").exists()


def test_with_several_candidates_none_is_adopted_and_the_page_says_so(
    widget, agent, key, staff_client
):
    first = _made_by(agent, Actor.api(key.api_key), name="From CRM", email="ada@example.com")
    second = _made_by(agent, _staff(), name="Typed by staff", email="Ada@Example.com")

    widget.jwt(user_id="u-42", contact_attributes={"email": "ada@example.com"})

    signed = Contact.objects.get(agent=agent, external_id="u-42")
    assert signed.pk not in (first.pk, second.pk)
    for other in (first, second):
        other.refresh_from_db()
        assert other.external_id is None
    page = staff_client.get(contact_url("detail", signed)).content.decode()
    assert "Possible duplicates" in page
    assert "an email that 2 contacts made by your team have" in page
    assert "From CRM" in page
    assert "Typed by staff" in page
    # A contact page of someone without that situation does not say it.
    assert (
        "made by your team have"
        not in staff_client.get(contact_url("detail", first)).content.decode()
    )


def test_another_agents_contact_is_never_adopted(widget, agent, other_agent):
    from workspaces.services import api_key_create

    other_key = api_key_create(agent=other_agent, name="k")
    stranger = _made_by(other_agent, Actor.api(other_key.api_key), email="ada@example.com")
    widget.jwt(user_id="u-42", contact_attributes={"email": "ada@example.com"})
    stranger.refresh_from_db()
    assert stranger.external_id is None
    assert Contact.objects.filter(agent=agent, external_id="u-42").exists()


def test_the_adoption_shows_in_the_history(widget, agent, key, staff_client):
    known = _made_by(agent, Actor.api(key.api_key), email="ada@example.com")
    widget.jwt(user_id="u-42", contact_attributes={"email": "ada@example.com"})
    html = staff_client.get(contact_url("detail", known)).content.decode()
    assert "External ID" in html
    assert "u-42" in html
    assert "Verified by" in html


@pytest.mark.parametrize("identity", ["verified", "self_reported"])
def test_a_visitor_who_typed_the_email_never_reaches_the_signed_in_contact(agent, api, identity):
    # The team created Ada through the API (verified: adoptable; self-reported: merged in by
    # the same-email rule instead). A stranger's browser types her email first. Then Ada
    # signs in elsewhere. Whatever happened to the team's contact, the stranger's session,
    # which never signed, must not stand for the verified Ada (the trust rule, SPEC 6).
    created = api.post(
        "/api/v1/contacts/", {"name": "Ada L.", "email": "ada@example.com", "identity": identity}
    )
    team_id = created.json()["id"]
    stranger = Widget(agent)
    assert stranger.identify({"email": "ada@example.com"}).status_code == 200

    signed = Widget(agent).jwt(user_id="u-42", contact_attributes={"email": "ada@example.com"})
    ada_id = signed.json()["contact"]["id"]
    assert signed.json()["contact"]["identity"] == "verified"
    assert (ada_id == team_id) is (identity == "verified")  # adopted, or a new verified one
    assert Contact.objects.get(pk=ada_id).external_id == "u-42"

    again = stranger.identify({})  # a page load with its own session token
    assert again.status_code == 200
    assert (again.json()["contact"] or {}).get("id") != ada_id
    typed = stranger.identify({"email": "ada@example.com", "name": "Mallory"})
    assert typed.json()["contact"]["id"] != ada_id
    assert Contact.objects.get(pk=ada_id).name == "Ada L."
    session = VisitorSession.objects.get(agent=agent, visitor_id=stranger.visitor_id)
    assert session.contact_id != ada_id
    assert not session.signed
