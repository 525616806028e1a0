from __future__ import annotations

import pytest
from django.utils import timezone

from contacts.models import AuditEvent, Contact
from helpdesk.models import Conversation
from tests.factories import (
    ContactFactory,
    ConversationFactory,
    MessageFactory,
    StripeAccountFactory,
    TagFactory,
)
from tests.helpers import agent_url, contact_url, list_url

pytestmark = pytest.mark.django_db


# --- Soft delete and restore ---------------------------------------------------------------------


def test_delete_hides_the_contact_and_the_table_offers_undo(staff_client, agent, contact):
    response = staff_client.post(contact_url("delete", contact))
    assert response.status_code == 302
    assert response.url == list_url(agent)
    contact.refresh_from_db()
    assert contact.deleted_at is not None
    html = staff_client.get(response.url).content.decode()
    assert "Ada Lovelace was deleted." in html
    assert f'name="id" value="{contact.pk}"' in html
    assert 'name="action" value="restore"' in html
    # The notice is shown once.
    assert "was deleted" not in staff_client.get(list_url(agent)).content.decode()
    undo = staff_client.post(
        agent_url("transfers:bulk", agent), {"action": "restore", "id": [contact.pk]}
    )
    assert undo.status_code == 302
    contact.refresh_from_db()
    assert contact.deleted_at is None


def test_restore_from_the_contact_page(staff_client, agent):
    gone = ContactFactory(agent=agent, deleted_at=timezone.now())
    response = staff_client.post(contact_url("restore", gone))
    assert response.url == contact_url("detail", gone)
    gone.refresh_from_db()
    assert gone.deleted_at is None
    assert AuditEvent.objects.filter(contact_id=gone.pk, action="restored").exists()


def test_delete_and_restore_need_post_and_the_right_workspace(staff_client, other_agent, contact):
    assert staff_client.get(contact_url("delete", contact)).status_code == 405
    assert staff_client.get(contact_url("restore", contact)).status_code == 405
    theirs = ContactFactory(agent=other_agent)
    assert staff_client.post(contact_url("delete", theirs)).status_code == 404
    theirs.refresh_from_db()
    assert theirs.deleted_at is None


# --- Erase ---------------------------------------------------------------------------------------


def test_erase_is_for_admins_only(staff_client, contact):
    assert staff_client.get(contact_url("erase", contact)).status_code == 403
    response = staff_client.post(contact_url("erase", contact), {"confirm": "ada@example.com"})
    assert response.status_code == 403
    assert Contact.objects.filter(pk=contact.pk).exists()
    page = staff_client.get(contact_url("detail", contact)).content.decode()
    assert "Erase permanently" not in page


def test_erase_needs_the_typed_confirmation(admin_client, contact):
    page = admin_client.get(contact_url("erase", contact)).content.decode()
    assert "ada@example.com" in page
    response = admin_client.post(contact_url("erase", contact), {"confirm": "ada@example"})
    assert response.status_code == 422
    assert "Type ada@example.com exactly" in response.content.decode()
    assert Contact.objects.filter(pk=contact.pk).exists()


def test_erase_removes_the_contact_and_anonymizes_transcripts(admin_client, agent, contact):
    contact.phone = "+14155552671"
    contact.save()
    conversation = ConversationFactory(agent=agent, contact=contact)
    message = MessageFactory(conversation=conversation, body="I am Ada Lovelace, ada@example.com")
    contact.tags.add(TagFactory(agent=agent))
    StripeAccountFactory(contact=contact)
    response = admin_client.post(contact_url("erase", contact), {"confirm": " ADA@example.com "})
    assert response.status_code == 302
    assert response.url == list_url(agent)
    assert not Contact.objects.filter(pk=contact.pk).exists()
    message.refresh_from_db()
    assert "Ada" not in message.body
    assert "ada@example.com" not in message.body
    assert Conversation.objects.get(pk=conversation.pk).contact_erased
    assert list(
        AuditEvent.objects.filter(contact_id=contact.pk).values_list("action", flat=True)
    ) == ["erased"]
    assert "The contact was erased" in admin_client.get(response.url).content.decode()


def test_erase_answers_404_for_another_workspace(admin_client, other_agent):
    theirs = ContactFactory(agent=other_agent)
    assert (
        admin_client.post(contact_url("erase", theirs), {"confirm": theirs.email}).status_code
        == 404
    )
    assert Contact.objects.filter(pk=theirs.pk).exists()


def test_a_contact_without_email_is_erased_by_typing_its_name(admin_client, agent):
    nameless = ContactFactory(agent=agent, name="Bob Visitor", email="")
    admin_client.post(contact_url("erase", nameless), {"confirm": "bob visitor"})
    assert not Contact.objects.filter(pk=nameless.pk).exists()


# --- Merge ---------------------------------------------------------------------------------------


def _merge(agent, primary, secondary) -> str:
    return f"{agent_url('contacts:merge', agent)}?primary={primary.pk}&secondary={secondary.pk}"


def test_the_merge_preview_shows_the_result_before_anything_changes(staff_client, agent, schema):
    keep = ContactFactory(agent=agent, name="Ada", email="ada@example.com", phone="")
    fold = ContactFactory(
        agent=agent,
        name="Ada L.",
        email="ada@example.com",
        phone="+14155552671",
        attributes={"plan": "Pro"},
    )
    fold.tags.add(TagFactory(agent=agent, name="vip"))
    ConversationFactory(agent=agent, contact=fold)
    html = staff_client.get(_merge(agent, keep, fold)).content.decode()
    assert "<ins>+1 415-555-2671</ins>" in html
    assert "<ins>Pro</ins>" in html
    assert "vip" in html
    assert Contact.objects.count() == 2
    response = staff_client.post(
        agent_url("contacts:merge", agent), {"primary": keep.pk, "secondary": fold.pk}
    )
    assert response.status_code == 302
    assert response.url == contact_url("detail", keep)
    keep.refresh_from_db()
    assert (keep.name, keep.phone, keep.attributes) == ("Ada", "+14155552671", {"plan": "Pro"})
    assert not Contact.objects.filter(pk=fold.pk).exists()
    assert Conversation.objects.get().contact_id == keep.pk


def test_after_a_merge_the_history_names_who_was_merged_in_and_the_old_page_leads_on(
    staff_client, admin_user, agent
):
    keep = ContactFactory(agent=agent, name="Ada", email="ada@example.com")
    older = ContactFactory(agent=agent, name="A. Lovelace", email="ada@old.example")
    fold = ContactFactory(agent=agent, name="Ada L.", email="lovelace@example.com")
    merge = agent_url("contacts:merge", agent)
    staff_client.post(merge, {"primary": fold.pk, "secondary": older.pk})
    staff_client.post(merge, {"primary": keep.pk, "secondary": fold.pk})

    page = staff_client.get(contact_url("detail", keep)).content.decode()
    assert "Merged in" in page
    assert "Ada L. (lovelace@example.com)" in page
    # Both old pages lead to where the contact lives now, even after two merges.
    for gone in (fold, older):
        response = staff_client.get(contact_url("detail", gone))
        assert (response.status_code, response.url) == (302, contact_url("detail", keep))
    followed = staff_client.get(contact_url("detail", fold), follow=True).content.decode()
    assert "merged into this one" in followed
    # Another workspace's id still answers 404.
    foreign = staff_client.get(contact_url("detail", fold, agent=ContactFactory().agent))
    assert foreign.status_code == 404

    # Erasing the survivor erases the merged-in names and the redirects with it.
    from contacts.models import MergedContact
    from contacts.services import contact_erase
    from core.actors import Actor

    contact_erase(contact=keep, actor=Actor.staff(admin_user, is_admin=True))
    assert not MergedContact.objects.exists()
    assert staff_client.get(contact_url("detail", fold)).status_code == 404


def test_contacts_with_different_external_ids_cannot_be_merged(staff_client, agent):
    a = ContactFactory(agent=agent, external_id="usr_1")
    b = ContactFactory(agent=agent, external_id="usr_2")
    preview = staff_client.get(_merge(agent, a, b)).content.decode()
    assert "cannot be merged" in preview
    assert 'type="submit" class="btn btn-primary">Merge' not in preview
    response = staff_client.post(
        agent_url("contacts:merge", agent), {"primary": a.pk, "secondary": b.pk}
    )
    assert response.status_code == 409
    assert Contact.objects.count() == 2


def test_merge_checks_the_workspace_and_method(staff_client, agent, other_agent, contact):
    theirs = ContactFactory(agent=other_agent)
    assert staff_client.get(_merge(agent, contact, theirs)).status_code == 404
    response = staff_client.post(
        agent_url("contacts:merge", agent), {"primary": contact.pk, "secondary": theirs.pk}
    )
    assert response.status_code == 404
    assert Contact.objects.filter(pk=theirs.pk).exists()
    assert staff_client.put(_merge(agent, contact, theirs)).status_code == 405
    assert staff_client.get(agent_url("contacts:merge", agent), {"primary": "x"}).status_code == 404


def test_script_names_render_as_text_in_the_merge_preview(staff_client, agent):
    a = ContactFactory(agent=agent, name="<script>alert(1)</script>")
    b = ContactFactory(agent=agent, name="<script>alert(2)</script>")
    html = staff_client.get(_merge(agent, a, b)).content.decode()
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html


# --- Every mutating view of one contact ----------------------------------------------------------

POST_ONLY = ["tags", "stripe_add", "delete", "restore"]


@pytest.mark.parametrize("name", POST_ONLY)
def test_post_only_contact_views_reject_other_methods(staff_client, contact, name):
    url = contact_url(name, contact)
    assert staff_client.get(url).status_code == 405
    assert staff_client.put(url).status_code == 405


@pytest.mark.parametrize("name", [*POST_ONLY, "edit", "erase"])
def test_contact_views_answer_404_for_another_workspaces_contact(
    admin_client, agent, other_agent, name
):
    theirs = ContactFactory(agent=other_agent, name="Theirs", email="t@globex.test")
    before = Contact.objects.filter(pk=theirs.pk).values().get()
    data = {"tag": "x", "stripe_id": "cus_X1", "name": "Hacked", "confirm": "t@globex.test"}
    for url in (contact_url(name, theirs), contact_url(name, theirs, agent=agent)):
        assert admin_client.post(url, data).status_code == 404
    assert Contact.objects.filter(pk=theirs.pk).values().get() == before
    assert not theirs.tags.exists()
    assert not theirs.stripe_accounts.exists()
