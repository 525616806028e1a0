from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from contacts.models import Contact, Identity, TablePreference
from tests.factories import AttributeFactory, ContactFactory, TagFactory
from tests.helpers import HX, agent_url, list_url, table_names

pytestmark = pytest.mark.django_db


def _headers(response) -> list[str]:
    html = response.content.decode()
    head = html[html.index("<thead>") : html.index("</thead>")]
    cells = re.findall(r"<th[^>]*>(.*?)</th>", head, re.S)
    return [re.sub(r"<[^>]+>|[▲▼]", "", c).strip() for c in cells][1:]


# --- Page and fragment --------------------------------------------------------------------------


def test_it_renders_the_full_page_with_the_agents_contacts_only(staff_client, agent, other_agent):
    ContactFactory(agent=agent, name="Older Person")
    ContactFactory(agent=agent, name="Newer Person")
    ContactFactory(agent=other_agent, name="Foreign Person")
    response = staff_client.get(list_url(agent))
    assert response.status_code == 200
    assert b"<html" in response.content
    assert table_names(response) == ["Newer Person", "Older Person"]
    assert b"Foreign Person" not in response.content
    assert "1–2 of 2 contacts" in response.content.decode()
    assert response["Vary"].count("HX-Request") == 1


def test_an_htmx_request_gets_only_the_table_fragment(staff_client, agent):
    ContactFactory(agent=agent, name="Grace Hopper")
    response = staff_client.get(list_url(agent), {"q": "grace"}, **HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert html.lstrip().startswith('<div id="contact-table"')
    assert table_names(response) == ["Grace Hopper"]
    # The form's empty fields stay out of the address bar.
    form = staff_client.get(list_url(agent), {"q": "grace", "identity": "", "seen": ""}, **HX)
    assert form["HX-Push-Url"] == f"{list_url(agent)}?q=grace"


def test_a_history_restore_gets_the_full_page(staff_client, agent):
    response = staff_client.get(
        list_url(agent), HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )
    assert b"<html" in response.content


def test_it_needs_a_signed_in_member(client, staff_client, agent, other_agent):
    assert client.get(list_url(agent)).status_code == 302
    assert staff_client.get(list_url(other_agent)).status_code == 404
    assert staff_client.post(list_url(agent)).status_code == 405


def test_names_are_escaped_everywhere_in_the_table(staff_client, agent):
    tagged = ContactFactory(agent=agent, name="<script>alert(1)</script>")
    tagged.tags.add(TagFactory(agent=agent, name="<b>bold</b>"))
    html = staff_client.get(list_url(agent), {"q": "<script>"}).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>bold</b>" not in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html


def _row_tags(html: str, name: str) -> list[str] | None:
    """The tag chips in the row of the contact named `name` (None: the row shows none)."""
    row = html[html.index(f">{name}</span>") :]
    row = row[: row.index("</tr>")]
    cell = re.search(r'<td class="tags-cell">(.*?)</td>', row, re.S)
    return re.findall(r'<span class="chip">(.*?)</span>', cell.group(1)) or None


def test_each_row_shows_its_own_tags_alphabetically_in_any_case(staff_client, agent, other_agent):
    first = ContactFactory(agent=agent, name="First Person", email="first@example.com")
    for name in ("gamma", "Alpha", "beta"):
        first.tags.add(TagFactory(agent=agent, name=name))
    second = ContactFactory(agent=agent, name="Second Person")
    second.tags.add(TagFactory(agent=agent, name="Zed"))
    ContactFactory(agent=agent, name="Untagged Person")
    foreign = ContactFactory(agent=other_agent, name="Foreign Person")
    foreign.tags.add(TagFactory(agent=other_agent, name="aardvark"))
    html = staff_client.get(list_url(agent), {"cols": "email,tags"}).content.decode()
    assert _row_tags(html, "First Person") == ["Alpha", "beta", "gamma"]
    assert _row_tags(html, "Second Person") == ["Zed"]
    assert _row_tags(html, "Untagged Person") is None
    assert "aardvark" not in html
    # A pasted email pins its contact first, with its tags too.
    pinned = staff_client.get(list_url(agent), {"q": "first@example.com", "cols": "tags"})
    assert table_names(pinned) == ["First Person"]
    assert _row_tags(pinned.content.decode(), "First Person") == ["Alpha", "beta", "gamma"]
    # Without the tags column no chip is shown.
    assert "tags-cell" not in staff_client.get(list_url(agent), {"cols": "email"}).content.decode()


def test_a_row_selects_and_links_its_contact_and_marks_it_deleted(staff_client, agent):
    contact = ContactFactory(agent=agent, name='Ada "Countess" <Lovelace>')
    html = staff_client.get(list_url(agent)).content.decode()
    name = "Ada &quot;Countess&quot; &lt;Lovelace&gt;"
    assert (
        f'<input type="checkbox" name="id" value="{contact.pk}" aria-label="Select {name}"'
        " data-row-check>" in html
    )
    assert f'<a class="contact-link" href="{list_url(agent)}{contact.pk}/">' in html
    assert f'<span class="long-name" title="{name}">{name}</span></a></td>' in html
    assert "badge-deleted" not in html
    Contact.objects.filter(pk=contact.pk).update(deleted_at=timezone.now())
    deleted = staff_client.get(list_url(agent), {"deleted": "true"}).content.decode()
    assert f'{name}</span></a> <span class="badge badge-deleted">Deleted</span></td>' in deleted


def test_cell_values_are_escaped_in_text_and_in_attributes(staff_client, agent, schema):
    hostile = '"><img src=x onerror=alert(1)> and enough words to earn a title attribute'
    ContactFactory(agent=agent, name="Mallory", company=hostile, attributes={"city": hostile})
    response = staff_client.get(list_url(agent), {"cols": "company,attr.city,identity"})
    html = response.content.decode()
    assert "<img src=x" not in html
    escaped = "&quot;&gt;&lt;img src=x onerror=alert(1)&gt; and enough words"
    assert f'<td class="">{escaped}' in html
    assert f'<td class="" title="{escaped}' in html
    assert (
        '<td><span class="badge badge-verified" title="via API">Verified by API</span></td>' in html
    )


# --- Search, sort, filters ------------------------------------------------------------------------


def test_search_narrows_by_name_email_phone_digits_external_id_and_tag(staff_client, agent):
    ContactFactory(agent=agent, name="Ada Lovelace", email="ada@math.org")
    ContactFactory(agent=agent, name="Bob", email="bob@x.org", external_id="CRM-77")
    ContactFactory(agent=agent, name="Cy", email="", phone="+14155552671")
    ContactFactory(agent=agent, name="Dee", email="d@x.org").tags.add(
        TagFactory(agent=agent, name="Enterprise")
    )
    url = list_url(agent)
    assert table_names(staff_client.get(url, {"q": "LOVE"})) == ["Ada Lovelace"]
    assert table_names(staff_client.get(url, {"q": "math.org"})) == ["Ada Lovelace"]
    assert table_names(staff_client.get(url, {"q": "crm-7"})) == ["Bob"]
    assert table_names(staff_client.get(url, {"q": "(415) 555"})) == ["Cy"]
    assert table_names(staff_client.get(url, {"q": "enterp"})) == ["Dee"]
    empty = staff_client.get(url, {"q": "nobody-matches"}).content.decode()
    assert "No contacts match" in empty


def test_sorting_by_a_column_header_toggles_the_direction(staff_client, agent):
    for name, email in [("B", "b@x.org"), ("A", "C@x.org"), ("C", "a@x.org")]:
        ContactFactory(agent=agent, name=name, email=email)
    url = list_url(agent)
    ascending = staff_client.get(url, {"ordering": "email"})
    assert table_names(ascending) == ["C", "B", "A"]  # a@, b@, C@: case does not matter
    html = ascending.content.decode()
    assert 'aria-sort="ascending"' in html
    assert "ordering=-email" in html  # clicking again sorts descending
    assert table_names(staff_client.get(url, {"ordering": "-email"})) == ["A", "B", "C"]
    assert table_names(staff_client.get(url, {"ordering": "name"})) == ["A", "B", "C"]


def test_it_sorts_by_an_attribute_column(staff_client, agent, schema):
    for name, mrr in [("Mid", 50), ("High", 900), ("None", None), ("Low", 5)]:
        ContactFactory(agent=agent, name=name, attributes={} if mrr is None else {"mrr": mrr})
    response = staff_client.get(list_url(agent), {"ordering": "-attr.mrr", "cols": "attr.mrr"})
    assert table_names(response) == ["High", "Mid", "Low", "None"]
    assert "MRR" in _headers(response)


def test_filters_by_tag_identity_last_seen_and_attribute(staff_client, agent, schema):
    now = timezone.now()
    vip = TagFactory(agent=agent, name="vip")
    a = ContactFactory(agent=agent, name="Verified VIP", attributes={"plan": "Pro", "mrr": 500})
    a.tags.add(vip)
    ContactFactory(
        agent=agent,
        name="Self reported",
        identity=Identity.SELF_REPORTED,
        last_seen_at=now - timedelta(days=2),
        attributes={"plan": "Free", "mrr": 10},
    )
    ContactFactory(agent=agent, name="Old", last_seen_at=now - timedelta(days=200))
    url = list_url(agent)
    assert table_names(staff_client.get(url, {"tag": "VIP"})) == ["Verified VIP"]
    assert table_names(staff_client.get(url, {"identity": "self_reported"})) == ["Self reported"]
    assert table_names(staff_client.get(url, {"seen": "7d"})) == ["Self reported"]
    assert table_names(staff_client.get(url, {"seen": "over90d"})) == ["Old"]
    assert table_names(staff_client.get(url, {"attr.plan": "pro"})) == ["Verified VIP"]
    assert table_names(staff_client.get(url, {"attr.mrr__gt": "100"})) == ["Verified VIP"]
    chips = staff_client.get(url, {"tag": "vip", "attr.mrr__gt": "100"}).content.decode()
    assert "Tag: vip" in chips
    assert "MRR &gt; 100" in chips


def test_the_attribute_filter_builder_becomes_a_canonical_url(staff_client, agent, schema):
    ContactFactory(agent=agent, name="Rich", attributes={"mrr": 500})
    ContactFactory(agent=agent, name="Poor", attributes={"mrr": 5})
    url = list_url(agent)
    response = staff_client.get(url, {"q": "", "fkey": "mrr", "fop": "gte", "fvalue": "100"})
    assert response.status_code == 302
    assert response.url == f"{url}?attr.mrr__gte=100"
    fragment = staff_client.get(url, {"fkey": "mrr", "fop": "gte", "fvalue": "100"}, **HX)
    assert fragment["HX-Push-Url"] == f"{url}?attr.mrr__gte=100"
    assert table_names(fragment) == ["Rich"]


def test_bad_parameters_are_reported_and_ignored_not_a_500(staff_client, agent, schema):
    ContactFactory(agent=agent, name="Still Listed")
    response = staff_client.get(
        list_url(agent),
        {"ordering": "password", "identity": "royal", "attr.mrr__gt": "lots", "cursor": "junk"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Cannot sort by" in html
    assert "not an identity level" in html
    assert "not a number" in html
    assert "cursor" in html
    assert table_names(response) == ["Still Listed"]


def test_the_deleted_view_lists_only_soft_deleted_contacts(staff_client, agent):
    ContactFactory(agent=agent, name="Alive")
    ContactFactory(agent=agent, name="Gone", deleted_at=timezone.now())
    assert table_names(staff_client.get(list_url(agent))) == ["Alive"]
    deleted = staff_client.get(list_url(agent), {"deleted": "true"})
    assert table_names(deleted) == ["Gone"]
    assert 'value="restore"' in deleted.content.decode()


def test_empty_states_say_what_to_do(staff_client, agent):
    html = staff_client.get(list_url(agent)).content.decode()
    assert "No contacts yet" in html
    assert "Nothing deleted" in staff_client.get(list_url(agent), {"deleted": "1"}).content.decode()


# --- Pages ----------------------------------------------------------------------------------------


def test_keyset_pages_move_forward_and_back(staff_client, agent):
    for i in range(30):
        ContactFactory(agent=agent, name=f"P{i:02d}")
    url = list_url(agent)
    first = staff_client.get(url, {"ordering": "name", "per_page": "25"})
    assert table_names(first) == [f"P{i:02d}" for i in range(25)]
    next_url = re.search(r'rel="next" href="([^"]+)"', first.content.decode()).group(1)
    assert "1–25 of 30 contacts" in first.content.decode()
    assert "last page" not in first.content.decode()
    second = staff_client.get(next_url.replace("&amp;", "&"))
    assert table_names(second) == [f"P{i:02d}" for i in range(25, 30)]
    # The footer says where the page is, and that it is the last one.
    assert "26–30 of 30 contacts · last page" in second.content.decode()
    assert 'aria-disabled="true">Next' in second.content.decode()
    prev_url = re.search(r'rel="prev" href="([^"]+)"', second.content.decode()).group(1)
    back = staff_client.get(prev_url.replace("&amp;", "&"))
    assert table_names(back) == table_names(first)
    assert "1–25 of 30 contacts" in back.content.decode()


# --- Columns and rows per page -------------------------------------------------------------------


def test_columns_in_the_url_choose_what_the_table_shows(staff_client, agent, schema):
    ContactFactory(
        agent=agent, name="Pro User", attributes={"plan": "Pro", "website": "https://x.io/"}
    )
    response = staff_client.get(list_url(agent), {"cols": "attr.plan,email,attr.website,bogus"})
    assert _headers(response) == ["Name", "Plan", "Email", "Website"]
    html = response.content.decode()
    assert ">Pro</td>" in html
    assert 'href="https://x.io/" rel="noopener noreferrer nofollow"' in html


def test_archived_attributes_are_neither_columns_nor_choices(staff_client, agent, schema):
    schema["city"].archived = True
    schema["city"].save()
    response = staff_client.get(list_url(agent), {"cols": "attr.city,email"})
    assert _headers(response) == ["Name", "Email"]
    assert 'value="attr.city"' not in response.content.decode()
    assert 'value="attr.plan"' in response.content.decode()


def test_the_column_chooser_is_remembered_per_user_and_agent(
    staff_client, admin_client, agent, staff_user, schema
):
    url = agent_url("contacts:table_settings", agent)
    response = staff_client.post(
        url, {"chooser": "1", "cols": ["email", "attr.mrr"], "query": "q=ada&cursor=abc"}
    )
    assert response.status_code == 302
    assert response.url.startswith(list_url(agent) + "?")
    assert "q=ada" in response.url
    assert "cols=email%2Cattr.mrr" in response.url
    preference = TablePreference.objects.get(user=staff_user, agent=agent)
    assert preference.columns == ["email", "attr.mrr"]
    # A plain visit uses the remembered layout; another member keeps the default one.
    assert _headers(staff_client.get(list_url(agent))) == ["Name", "Email", "MRR"]
    assert "Phone" in _headers(admin_client.get(list_url(agent)))


def test_the_column_chooser_answers_htmx_with_the_fragment_and_the_new_url(
    staff_client, agent, schema
):
    response = staff_client.post(
        agent_url("contacts:table_settings", agent),
        {"chooser": "1", "cols": ["attr.plan"], "query": "ordering=name"},
        **HX,
    )
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<div id="contact-table"')
    assert "cols=attr.plan" in response["HX-Push-Url"]
    assert "ordering=name" in response["HX-Push-Url"]
    assert 'column-chooser" open' in response.content.decode()


def test_rows_per_page_is_remembered(staff_client, agent, staff_user):
    for i in range(30):
        ContactFactory(agent=agent, name=f"P{i:02d}")
    url = agent_url("contacts:table_settings", agent)
    assert staff_client.post(url, {"per_page": "25", "query": ""}).status_code == 302
    assert TablePreference.objects.get(user=staff_user, agent=agent).page_size == 25
    assert len(table_names(staff_client.get(list_url(agent)))) == 25
    assert len(table_names(staff_client.get(list_url(agent), {"per_page": "100"}))) == 30


def test_table_settings_refuse_bad_input_and_the_wrong_method(staff_client, agent, other_agent):
    url = agent_url("contacts:table_settings", agent)
    assert staff_client.get(url).status_code == 405
    assert staff_client.post(url, {"per_page": "1000000"}).status_code == 400
    assert not TablePreference.objects.exists()
    assert (
        staff_client.post(agent_url("contacts:table_settings", other_agent), {}).status_code == 404
    )


# --- Query counts ------------------------------------------------------------------------------


def test_the_query_count_is_flat_as_rows_and_attribute_columns_grow(
    staff_client, agent, django_assert_num_queries
):
    tag = TagFactory(agent=agent)
    keys = [f"a{i}" for i in range(8)]
    for i, key in enumerate(keys):
        AttributeFactory(agent=agent, key=key, type="number" if i % 2 else "text", position=i)
    for contact in ContactFactory.create_batch(3, agent=agent, attributes={"a0": "x", "a1": 1}):
        contact.tags.add(tag)
    url = list_url(agent)
    small = {"cols": "email,tags,attr.a0"}
    staff_client.get(url, small)  # warm the session
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as baseline:
        staff_client.get(url, small)
    for contact in ContactFactory.create_batch(60, agent=agent, attributes={"a0": "y", "a1": 2}):
        contact.tags.add(tag)
    wide = {"cols": ",".join(["email", "tags", *[f"attr.{k}" for k in keys]]), "per_page": "100"}
    with django_assert_num_queries(len(baseline.captured_queries)):
        response = staff_client.get(url, wide)
    assert len(table_names(response)) == 63


# --- Bulk actions --------------------------------------------------------------------------------


def test_bulk_add_tag_tags_the_selected_contacts(staff_client, agent):
    a, b, _c = ContactFactory.create_batch(3, agent=agent)
    response = staff_client.post(
        agent_url("transfers:bulk", agent),
        {"action": "tag", "tag": "priority", "id": [a.pk, b.pk], "query": "ordering=name"},
    )
    assert response.status_code == 302
    assert response.url == list_url(agent) + "?ordering=name"
    assert set(Contact.objects.filter(tags__name="priority").values_list("pk", flat=True)) == {
        a.pk,
        b.pk,
    }
    assert "Tagged 2 contacts with “priority”." in staff_client.get(response.url).content.decode()


def test_bulk_delete_soft_deletes_and_offers_undo(staff_client, agent):
    a, b = ContactFactory.create_batch(2, agent=agent)
    url = agent_url("transfers:bulk", agent)
    response = staff_client.post(url, {"action": "delete", "id": [a.pk, b.pk]}, **HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Deleted 2 contacts." in html
    assert "Undo" in html
    assert Contact.objects.filter(deleted_at__isnull=False).count() == 2
    undo = staff_client.post(url, {"action": "restore", "id": [a.pk, b.pk]}, **HX)
    assert "Restored 2 contacts." in undo.content.decode()
    assert Contact.objects.filter(deleted_at__isnull=True).count() == 2


def test_bulk_actions_never_touch_another_agents_contacts(staff_client, agent, other_agent):
    mine = ContactFactory(agent=agent)
    theirs = ContactFactory(agent=other_agent)
    staff_client.post(
        agent_url("transfers:bulk", agent), {"action": "delete", "id": [mine.pk, theirs.pk, "x"]}
    )
    theirs.refresh_from_db()
    mine.refresh_from_db()
    assert theirs.deleted_at is None
    assert mine.deleted_at is not None
    response = staff_client.post(
        agent_url("transfers:bulk", other_agent), {"action": "delete", "id": [theirs.pk]}
    )
    assert response.status_code == 404


def test_bulk_refuses_the_wrong_method_unknown_actions_and_empty_input(staff_client, agent):
    url = agent_url("transfers:bulk", agent)
    contact = ContactFactory(agent=agent)
    assert staff_client.get(url).status_code == 405
    assert staff_client.post(url, {"action": "explode", "id": [contact.pk]}).status_code == 400
    response = staff_client.post(url, {"action": "delete"}, follow=True)
    assert "Select at least one contact first." in response.content.decode()
    response = staff_client.post(url, {"action": "tag", "id": [contact.pk], "tag": ""}, follow=True)
    assert "Type the tag to add." in response.content.decode()
    assert not contact.tags.exists()
