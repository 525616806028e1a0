from __future__ import annotations

import json

import pytest
from django.urls import reverse
from django.utils import timezone

from contacts.models import AuditEvent, StripeAccount, Tag
from contacts.services import contact_update
from core.actors import Actor
from tests.factories import (
    ContactFactory,
    ConversationFactory,
    StripeAccountFactory,
    TagFactory,
)
from tests.helpers import HX, contact_url

pytestmark = pytest.mark.django_db


def test_the_contact_page_shows_everything_about_the_person(staff_client, agent, schema):
    contact = ContactFactory(
        agent=agent,
        name="Ada Lovelace",
        email="ada@example.com",
        phone="+14155552671",
        company="Analytical Engines",
        external_id="usr_1",
        identity_source="jwt",
        attributes={"plan": "Pro", "mrr": 42.5, "beta": True, "website": "https://ada.dev/"},
        first_seen_at=timezone.now(),
        last_seen_at=timezone.now(),
    )
    contact.tags.add(TagFactory(agent=agent, name="vip"))
    StripeAccountFactory(contact=contact, stripe_id="cus_ABC123", label="Main")
    ConversationFactory(agent=agent, contact=contact, subject="Billing question")
    contact_update(contact=contact, actor=Actor.api(_Key()), data={"attributes": {"mrr": 50}})
    html = staff_client.get(contact_url("detail", contact)).content.decode()
    assert "Ada Lovelace" in html
    assert 'class="badge badge-verified"' in html
    assert "via signed JWT" in html
    assert "+1 415-555-2671" in html
    assert "Analytical Engines" in html
    assert "usr_1" in html
    assert '<dd data-attribute="plan">Pro</dd>' in html
    assert '<dd data-attribute="beta">Yes</dd>' in html
    assert 'href="https://ada.dev/"' in html
    assert "vip" in html
    assert "cus_ABC123" in html
    assert "Billing question" in html
    assert "First seen" in html
    # The audit entry names the channel and the before -> after of the field.
    assert "via API" in html
    assert "<del>42.5</del> → <ins>50</ins>" in html


class _Key:
    name = "sync"
    prefix = "rk_test"


def test_conversations_link_to_the_help_desk(staff_client, agent, contact):
    conversation = ConversationFactory(agent=agent, contact=contact, subject="Where is my order")
    html = staff_client.get(contact_url("detail", contact)).content.decode()
    url = reverse(
        "helpdesk:conversation",
        kwargs={"agent_public_id": agent.public_id, "conversation_id": conversation.pk},
    )
    assert f'<a href="{url}">Where is my order</a>' in html


def test_possible_duplicates_offer_a_merge_preview(staff_client, agent, contact):
    twin = ContactFactory(agent=agent, name="Ada L.", email="ADA@example.com")
    ContactFactory(agent=agent, name="Stranger", email="someone@else.org")
    html = staff_client.get(contact_url("detail", contact)).content.decode()
    assert "Possible duplicates" in html
    assert "Ada L." in html
    assert "same email" in html
    assert f"primary={contact.pk}&amp;secondary={twin.pk}" in html
    assert "Stranger" not in html


def test_it_answers_404_for_another_workspaces_contact(staff_client, agent, other_agent):
    theirs = ContactFactory(agent=other_agent)
    assert staff_client.get(contact_url("detail", theirs, agent=agent)).status_code == 404
    assert staff_client.get(contact_url("detail", theirs)).status_code == 404


def test_a_deleted_contact_shows_a_restore_banner(staff_client, agent):
    gone = ContactFactory(agent=agent, deleted_at=timezone.now())
    html = staff_client.get(contact_url("detail", gone)).content.decode()
    assert "Hidden from the table" in html
    assert contact_url("restore", gone) in html


def test_script_names_render_as_text_on_the_contact_page(staff_client, agent, schema):
    contact = ContactFactory(
        agent=agent, name="<script>alert(1)</script>", attributes={"city": "<img src=x>"}
    )
    contact.tags.add(TagFactory(agent=agent, name="<i>x</i>"))
    html = staff_client.get(contact_url("detail", contact)).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x>" not in html
    assert "<i>x</i>" not in html


# --- Tags -------------------------------------------------------------------------------------


def test_adding_a_tag_returns_the_tags_card_and_the_new_history_entry(staff_client, contact):
    response = staff_client.post(contact_url("tags", contact), {"tag": "Churn risk"}, **HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="contact-tags"')
    assert "Churn risk" in html
    assert 'id="contact-history" class="card" hx-swap-oob="true"' in html
    assert "<ins>+ Churn risk</ins>" in html
    assert list(contact.tags.values_list("name", flat=True)) == ["Churn risk"]
    event = AuditEvent.objects.filter(contact_id=contact.pk).latest("created_at")
    assert event.changes["tags"] == [[], ["Churn risk"]]


def test_a_picked_suggestion_wins_over_the_typed_prefix(staff_client, agent, contact):
    TagFactory(agent=agent, name="enterprise")
    staff_client.post(contact_url("tags", contact), {"tag": "ent", "pick": "enterprise"}, **HX)
    assert list(contact.tags.values_list("name", flat=True)) == ["enterprise"]
    assert not Tag.objects.filter(name="ent").exists()


def test_removing_a_tag(staff_client, agent, contact):
    contact.tags.add(TagFactory(agent=agent, name="vip"))
    response = staff_client.post(contact_url("tags", contact), {"remove": "VIP"})
    assert response.status_code == 302
    assert not contact.tags.exists()


def test_a_bad_tag_is_an_inline_error_and_changes_nothing(staff_client, contact):
    response = staff_client.post(contact_url("tags", contact), {"tag": "x" * 65}, **HX)
    assert response.status_code == 422
    assert "longer than 64" in response.content.decode()
    assert 'aria-invalid="true"' in response.content.decode()
    empty = staff_client.post(contact_url("tags", contact), {"tag": "  "}, **HX)
    assert empty.status_code == 422
    assert "Type a tag name." in empty.content.decode()
    assert not contact.tags.exists()


def test_tag_suggestions_match_the_prefix_and_skip_held_tags(staff_client, agent, contact):
    for name in ["vip", "video", "enterprise", "vintage"]:
        TagFactory(agent=agent, name=name)
    contact.tags.add(Tag.objects.get(name="vintage"))
    html = staff_client.get(contact_url("tag_suggestions", contact), {"tag": "vi"}).content.decode()
    assert 'value="vip"' in html
    assert 'value="video"' in html
    assert 'value="vintage"' not in html
    assert "enterprise" not in html
    assert "Create tag “vi”" in html
    exact = staff_client.get(contact_url("tag_suggestions", contact), {"tag": "vip"})
    assert "Create tag" not in exact.content.decode()


def test_tag_views_reject_the_wrong_method_and_other_workspaces(staff_client, contact, other_agent):
    theirs = ContactFactory(agent=other_agent)
    assert staff_client.post(contact_url("tags", theirs), {"tag": "x"}).status_code == 404
    assert staff_client.get(contact_url("tag_suggestions", theirs)).status_code == 404
    assert staff_client.get(contact_url("tags", contact)).status_code == 405
    assert staff_client.post(contact_url("tag_suggestions", contact)).status_code == 405
    assert not theirs.tags.exists()


# --- Stripe accounts ----------------------------------------------------------------------------


def test_linking_a_stripe_account(staff_client, contact):
    response = staff_client.post(
        contact_url("stripe_add", contact),
        {"label": "EU store", "stripe_id": "cus_NffrFeUfNV2Hib", "stripe_email": "Ada@Example.com"},
        **HX,
    )
    assert response.status_code == 200
    assert "cus_NffrFeUfNV2Hib" in response.content.decode()
    account = StripeAccount.objects.get(contact=contact)
    assert (account.label, account.stripe_email) == ("EU store", "Ada@example.com")


def test_a_bad_stripe_id_or_email_is_an_inline_error(staff_client, contact):
    response = staff_client.post(
        contact_url("stripe_add", contact),
        {"stripe_id": "acct_123", "stripe_email": "not-an-email"},
        **HX,
    )
    html = response.content.decode()
    assert response.status_code == 422
    assert "cus_" in html
    assert html.count('class="field-error"') == 2
    assert '<details class="stripe-add" open>' in html
    assert not StripeAccount.objects.exists()


def test_editing_and_removing_a_stripe_account(staff_client, contact):
    account = StripeAccountFactory(contact=contact, stripe_id="cus_OLD1")
    url = contact_url("stripe_change", contact, account_id=account.pk)
    staff_client.post(url, {"label": "Renamed", "stripe_id": "cus_NEW2", "stripe_email": ""})
    account.refresh_from_db()
    assert (account.label, account.stripe_id) == ("Renamed", "cus_NEW2")
    bad = staff_client.post(url, {"label": "", "stripe_id": "nope", "stripe_email": ""}, **HX)
    assert bad.status_code == 422
    account.refresh_from_db()
    assert account.stripe_id == "cus_NEW2"
    staff_client.post(url, {"remove": "1"})
    assert not StripeAccount.objects.exists()


def test_another_contacts_stripe_account_is_404(staff_client, agent, contact):
    other = StripeAccountFactory(contact=ContactFactory(agent=agent))
    url = contact_url("stripe_change", contact, account_id=other.pk)
    assert staff_client.post(url, {"remove": "1"}).status_code == 404
    assert staff_client.get(url).status_code == 405
    assert StripeAccount.objects.filter(pk=other.pk).exists()


# --- Download data --------------------------------------------------------------------------------


def test_download_data_is_a_json_attachment(staff_client, contact):
    ConversationFactory(agent=contact.agent, contact=contact, subject="Hi")
    response = staff_client.get(contact_url("data", contact))
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == f'attachment; filename="contact-{contact.pk}.json"'
    data = json.loads(response.content)
    assert data["contact"]["email"] == "ada@example.com"
    assert data["conversations"][0]["subject"] == "Hi"
    assert staff_client.post(contact_url("data", contact)).status_code == 405


def test_the_contact_page_query_count_is_flat_as_its_lists_grow(
    staff_client, agent, schema, contact, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    actor = Actor.api(_Key())

    def grow(n: int) -> None:
        for i in range(n):
            ConversationFactory(agent=agent, contact=contact, subject=f"Question {i}")
            contact_update(contact=contact, actor=actor, data={"attributes": {"mrr": i + 1}})
            contact.tags.add(TagFactory(agent=agent))
            StripeAccountFactory(contact=contact)
            ContactFactory(agent=agent, email=contact.email)  # a possible duplicate

    grow(1)
    url = contact_url("detail", contact)
    staff_client.get(url)
    with CaptureQueriesContext(connection) as baseline:
        staff_client.get(url)
    grow(12)
    with django_assert_num_queries(len(baseline.captured_queries)):
        html = staff_client.get(url).content.decode()
    assert html.count("Question ") == 13
