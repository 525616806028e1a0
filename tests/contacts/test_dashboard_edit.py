from __future__ import annotations

import pytest

from contacts.models import AuditEvent, Contact, Identity
from tests.factories import ContactFactory
from tests.helpers import agent_url, contact_url

pytestmark = pytest.mark.django_db


def test_the_new_contact_form_has_a_typed_input_per_attribute(staff_client, agent, schema):
    html = staff_client.get(agent_url("contacts:new", agent)).content.decode()
    assert 'type="number" name="attr_mrr"' in html
    assert 'type="checkbox" name="attr_beta"' in html
    assert 'type="date" name="attr_signup"' in html
    assert 'type="datetime-local" name="attr_last_order"' in html
    assert 'type="url" name="attr_website"' in html
    assert '<select name="attr_plan"' in html
    assert '<option value="Pro">Pro</option>' in html
    assert 'type="text" name="attr_city"' in html


def test_adding_a_contact_stores_typed_values(staff_client, agent, schema, staff_user):
    response = staff_client.post(
        agent_url("contacts:new", agent),
        {
            "name": " Grace  Hopper ",
            "email": "Grace@Navy.MIL",
            "phone": "(415) 555-2671",
            "attr_mrr": "42",
            "attr_beta": "on",
            "attr_plan": "pro",
            "attr_signup": "2024-03-31",
            "attr_last_order": "2024-03-31T14:30",
        },
    )
    contact = Contact.objects.get(agent=agent)
    assert response.status_code == 302
    assert response.url == contact_url("detail", contact)
    assert (contact.name, contact.email, contact.phone) == (
        "Grace Hopper",
        "Grace@navy.mil",
        "+14155552671",
    )
    assert contact.attributes == {
        "mrr": 42,
        "beta": True,
        "plan": "Pro",
        "signup": "2024-03-31",
        "last_order": "2024-03-31T14:30:00Z",
    }
    assert contact.identity == Identity.VERIFIED
    event = AuditEvent.objects.get(contact_id=contact.pk)
    assert (event.channel, event.actor_user_id) == ("staff", staff_user.pk)


def test_invalid_input_shows_inline_errors_and_saves_nothing(staff_client, agent, schema):
    response = staff_client.post(
        agent_url("contacts:new", agent),
        {"name": "X", "email": "not-an-email", "attr_mrr": "lots", "attr_website": "ftp://x"},
    )
    html = response.content.decode()
    assert response.status_code == 422
    assert html.count('class="field has-error"') == 3
    # Written for people, beside the field: not "mrr: not a number (expected number, …)".
    assert '<p class="field-error">MRR must be a number.</p>' in html
    assert "expected number" not in html
    assert (
        '<p class="field-error">Website must be a web address starting with https://.</p>' in html
    )
    assert "Please correct the highlighted fields." in html
    assert 'value="lots"' in html  # what was typed stays in the form
    assert not Contact.objects.exists()


def test_editing_a_typed_attribute_is_audited_with_before_and_after(
    staff_client, agent, schema, contact
):
    contact.attributes = {"mrr": 10, "plan": "Free"}
    contact.save()
    form = staff_client.get(contact_url("edit", contact)).content.decode()
    assert 'name="attr_mrr" value="10"' in form
    response = staff_client.post(
        contact_url("edit", contact),
        {"name": contact.name, "email": contact.email, "attr_mrr": "99.5", "attr_plan": "Free"},
    )
    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.attributes == {"mrr": 99.5, "plan": "Free"}  # untouched beta stays unset
    event = AuditEvent.objects.filter(contact_id=contact.pk).latest("created_at")
    assert event.changes == {"attributes.mrr": [10, 99.5]}
    page = staff_client.get(response.url).content.decode()
    assert "Saved 1 change." in page
    assert "<del>10</del> → <ins>99.5</ins>" in page


def test_clearing_a_value_removes_it(staff_client, agent, schema, contact):
    contact.attributes = {"city": "Paris"}
    contact.save()
    staff_client.post(
        contact_url("edit", contact),
        {"name": contact.name, "email": contact.email, "attr_city": ""},
    )
    contact.refresh_from_db()
    assert contact.attributes == {}


def test_staff_cannot_edit_secure_attributes_but_admins_can(
    staff_client, admin_client, agent, schema, contact
):
    contact.attributes = {"ltv": 100}
    contact.save()
    form = staff_client.get(contact_url("edit", contact)).content.decode()
    assert 'name="attr_ltv" value="100" step="any" disabled' in form
    assert "only admins can change it" in form
    data = {"name": contact.name, "email": contact.email, "attr_ltv": "5"}
    staff_client.post(contact_url("edit", contact), data)
    contact.refresh_from_db()
    assert contact.attributes == {"ltv": 100}
    admin_client.post(contact_url("edit", contact), data)
    contact.refresh_from_db()
    assert contact.attributes == {"ltv": 5}


def test_an_email_another_contact_has_offers_a_merge_instead_of_saving(
    staff_client, agent, contact
):
    other = ContactFactory(agent=agent, name="Ada (old account)", email="ada.old@example.com")
    response = staff_client.post(
        contact_url("edit", contact), {"name": "Renamed", "email": "ADA.OLD@example.com"}
    )
    html = response.content.decode()
    assert response.status_code == 409
    assert "Ada (old account) already has this email." in html
    assert "This email belongs to another contact" in html
    merge = agent_url("contacts:merge", agent)
    assert f"{merge}?primary={contact.pk}&amp;secondary={other.pk}" in html
    assert f"{merge}?primary={other.pk}&amp;secondary={contact.pk}" in html
    contact.refresh_from_db()
    assert (contact.name, contact.email) == ("Ada Lovelace", "ada@example.com")


def test_a_new_contact_with_a_known_email_points_to_the_existing_one(staff_client, agent, contact):
    response = staff_client.post(agent_url("contacts:new", agent), {"email": "ada@EXAMPLE.com"})
    assert response.status_code == 409
    assert f'href="{contact_url("detail", contact)}"' in response.content.decode()
    assert Contact.objects.count() == 1


def test_the_external_id_is_fixed_once_set(staff_client, agent):
    contact = ContactFactory(agent=agent, external_id="usr_1")
    form = staff_client.get(contact_url("edit", contact)).content.decode()
    assert 'name="external_id" value="usr_1" maxlength="255" disabled' in form
    staff_client.post(contact_url("edit", contact), {"name": "N", "external_id": "usr_2"})
    contact.refresh_from_db()
    assert contact.external_id == "usr_1"


def test_edit_views_check_the_workspace_and_method(staff_client, agent, other_agent, contact):
    theirs = ContactFactory(agent=other_agent, name="Theirs")
    assert staff_client.get(contact_url("edit", theirs)).status_code == 404
    assert staff_client.post(contact_url("edit", theirs), {"name": "Hacked"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "Theirs"
    assert staff_client.put(contact_url("edit", contact)).status_code == 405
    assert staff_client.delete(agent_url("contacts:new", agent)).status_code == 405
    assert (
        staff_client.post(agent_url("contacts:new", other_agent), {"name": "x"}).status_code == 404
    )


def test_script_names_render_as_text_in_the_form(staff_client, agent):
    contact = ContactFactory(agent=agent, name="<script>alert(1)</script>")
    html = staff_client.get(contact_url("edit", contact)).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
