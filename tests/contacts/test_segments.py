"""Saved segments on the contacts table: saving a view, opening it as a URL, the sidebar,
updating, renaming, sharing and deleting, and who may do which."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from attributes.models import AttributeDefinition
from contacts.models import Segment
from contacts.services.segments import (
    MAX_SEGMENTS_PER_PERSON,
    segment_create,
    segment_delete,
    segment_update,
)
from core.errors import ForbiddenError, ValidationFailed
from tests.factories import ContactFactory, MembershipFactory, TagFactory, UserFactory
from tests.helpers import HX, agent_url, list_url, table_names
from workspaces.models import Membership

pytestmark = pytest.mark.django_db


def _create_url(agent) -> str:
    return agent_url("contacts:segment_create", agent)


def _change_url(agent, segment) -> str:
    return agent_url("contacts:segment_change", agent, segment_id=segment.pk)


def _count_url(agent, segment) -> str:
    return agent_url("contacts:segment_count", agent, segment_id=segment.pk)


def _segment(agent, user, name="VIP", *, shared=False, query="tag=vip&ordering=name", defs=None):
    return segment_create(
        agent=agent, user=user, name=name, shared=shared, query=query, definitions=defs or {}
    )


def _sidebar(response) -> list[str]:
    html = response.content.decode()
    nav = re.search(r'<nav class="segments".*?</nav>', html, re.S).group(0)
    return [unescape(n) for n in re.findall(r'<span class="segment-name">([^<]*)</span>', nav)]


def _current(response) -> str | None:
    html = response.content.decode()
    nav = re.search(r'<nav class="segments".*?</nav>', html, re.S).group(0)
    found = re.search(r'aria-current="page"[^>]*>\s*<span class="segment-name">([^<]*)<', nav)
    return unescape(found.group(1)) if found else None


def _notice(response) -> str:
    html = unescape(response.content.decode())
    found = re.search(r'class="flash[^"]*notice"[^>]*>\s*<span>([^<]*)</span>', html)
    return found.group(1) if found else ""


@pytest.fixture
def people(agent, staff_user, admin_user):
    vip = TagFactory(agent=agent, name="vip")
    ContactFactory(agent=agent, name="Ada", email="ada@acme.com", conversation_count=3).tags.add(
        vip
    )
    ContactFactory(agent=agent, name="Bob", email="bob@acme.com").tags.add(vip)
    ContactFactory(agent=agent, name="Cy", email="cy@globex.com", conversation_count=5)
    return vip


@pytest.fixture
def colleague(workspace) -> Client:
    user = UserFactory(username="colleague@acme.test")
    MembershipFactory(user=user, workspace=workspace, role=Membership.Role.STAFF)
    client = Client()
    client.force_login(user)
    client.user = user
    return client


# --- Saving and opening ------------------------------------------------------------------------


def test_saving_the_view_keeps_filters_conditions_sort_and_columns(
    staff_client, staff_user, agent, people
):
    url = list_url(agent)
    state = "tag=vip&match=any&email__contains=acme&conversation_count__gte=3&ordering=name"
    page = staff_client.get(f"{url}?{state}&cols=email,tags&per_page=25")
    html = unescape(page.content.decode())
    saved = re.search(r'name="saved_query" value="([^"]*)"', html).group(1)
    response = staff_client.post(
        _create_url(agent),
        {"name": "  Acme VIPs ", "shared": "1", "saved_query": saved, "query": state},
    )
    segment = Segment.objects.get()
    assert response.status_code == 302
    assert response.url == f"{url}?segment={segment.pk}"
    assert (segment.name, segment.shared, segment.owner) == ("Acme VIPs", True, staff_user)
    # Paging and rows per page are not part of a segment; the columns shown are.
    assert parse_qs(segment.query) == {
        "tag": ["vip"],
        "match": ["any"],
        "email__contains": ["acme"],
        "conversation_count__gte": ["3"],
        "ordering": ["name"],
        "cols": ["email,tags"],
    }
    opened = staff_client.get(response.url)
    assert opened.status_code == 302
    assert opened.url == f"{url}?segment={segment.pk}&{segment.query}"
    page = staff_client.get(opened.url)
    assert _notice(page) == "Saved segment “Acme VIPs” (shared with the team)."
    assert table_names(page) == ["Ada", "Bob"]
    html = unescape(page.content.decode())
    assert '<h2 id="segment-heading" class="segment-heading">Acme VIPs</h2>' in html
    assert "Edited" not in html
    assert _current(page) == "Acme VIPs"
    assert _sidebar(page) == ["Everyone", "Acme VIPs"]


def test_opening_a_segment_with_htmx_pushes_its_address(staff_client, staff_user, agent, people):
    segment = _segment(agent, staff_user)
    response = staff_client.get(list_url(agent), {"segment": segment.pk}, **HX)
    assert response.status_code == 200
    assert response["HX-Push-Url"] == f"{list_url(agent)}?segment={segment.pk}&{segment.query}"
    assert table_names(response) == ["Ada", "Bob"]
    # A fragment: the table only, which names the segment it shows for the sidebar's script.
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="contact-table"')
    assert f'data-segment="{segment.pk}"' in html


def test_a_changed_view_offers_update_and_discard(staff_client, staff_user, agent, people):
    segment = _segment(agent, staff_user)
    url = f"{list_url(agent)}?segment={segment.pk}&{segment.query}"
    page = staff_client.get(url + "&conversation_count__gte=1")
    html = unescape(page.content.decode())
    assert table_names(page) == ["Ada"]
    assert "Edited: not saved in the segment" in html
    assert "Update segment" in html
    assert f'href="{list_url(agent)}?segment={segment.pk}"' in html  # discard changes
    saved = re.search(r'name="saved_query" value="([^"]*)"', html).group(1)
    response = staff_client.post(
        _change_url(agent, segment),
        {"action": "update", "saved_query": saved, "query": urlsplit(url).query},
    )
    assert response.status_code == 302
    segment.refresh_from_db()
    assert parse_qs(segment.query)["conversation_count__gte"] == ["1"]
    page = staff_client.get(response.url)
    assert _notice(page) == "Updated “VIP” to this view."
    # The address is the segment's state again: nothing left to update.
    page = staff_client.get(f"{list_url(agent)}?segment={segment.pk}", follow=True)
    assert "Update segment" not in page.content.decode()
    assert table_names(page) == ["Ada"]


def test_the_sidebar_lists_shared_and_own_segments_with_lazy_counts(
    staff_client, staff_user, admin_user, agent, people
):
    mine = _segment(agent, staff_user, "Mine")
    team = _segment(agent, admin_user, "Team", shared=True, query="conversation_count__gte=1")
    _segment(agent, admin_user, "Admin's own")
    page = staff_client.get(list_url(agent))
    assert _sidebar(page) == ["Everyone", "Team", "Mine"]
    assert _current(page) == "Everyone"
    html = page.content.decode()
    assert f'hx-get="{_count_url(agent, team)}" hx-trigger="load"' in html
    assert f'hx-get="{_count_url(agent, mine)}" hx-trigger="load"' in html
    assert 'title="Team (by admin@acme.test)"' in html
    count = staff_client.get(_count_url(agent, team))
    assert count.status_code == 200
    assert count.content.decode() == "2"
    assert count["Cache-Control"] == "private, no-store"
    assert staff_client.get(_count_url(agent, mine)).content.decode() == "2"


def test_a_large_segment_shows_an_estimate(staff_client, staff_user, agent, people, monkeypatch):
    segment = _segment(agent, staff_user, query="email__contains=acme")
    monkeypatch.setattr(
        "contacts.views.segments.table_count", lambda qs, filters, agent: (1_234_567, False)
    )
    assert staff_client.get(_count_url(agent, segment)).content.decode() == "about 1.2M"


def test_the_table_runs_as_many_queries_with_many_segments(
    staff_client, staff_user, agent, people, django_assert_num_queries
):
    _segment(agent, staff_user, "One")
    url = list_url(agent)
    staff_client.get(url)
    with CaptureQueriesContext(connection) as few:
        staff_client.get(url)
    for n in range(12):
        _segment(agent, staff_user, f"More {n}", shared=n % 2 == 0)
    with django_assert_num_queries(len(few.captured_queries)):
        page = staff_client.get(url)
    assert len(_sidebar(page)) == 14


def test_a_segment_whose_attribute_was_deleted_says_so(staff_client, staff_user, agent, schema):
    ContactFactory(agent=agent, name="Pro", attributes={"plan": "Pro"})
    segment = _segment(agent, staff_user, query="attr.plan=Pro", defs=schema)
    AttributeDefinition.objects.filter(agent=agent, key="plan").delete()
    page = staff_client.get(f"{list_url(agent)}?segment={segment.pk}", follow=True)
    assert page.status_code == 200
    html = unescape(page.content.decode())
    assert "<strong>attr.plan</strong>: No attribute with key 'plan'." in html
    assert table_names(page) == ["Pro"]


# --- Refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "   "}, "Give the segment a name."),
        ({"name": "x" * 81}, "Use at most 80 characters."),
        ({"name": "vip"}, "You already have a segment named “vip”."),
        ({"name": "Team", "shared": "1"}, "The team already shares a segment named “Team”"),
        ({"name": "Odd", "saved_query": "attr.nope=1"}, "attr.nope: No attribute with key 'nope'."),
        ({"name": "Odd", "saved_query": "created_at__gt=soon"}, "'soon' is not a date"),
    ],
)
def test_a_segment_that_cannot_be_saved_is_refused_beside_the_form(
    staff_client, staff_user, admin_user, agent, people, data, message
):
    _segment(agent, staff_user, "VIP")
    _segment(agent, admin_user, "Team", shared=True)
    before = set(Segment.objects.values_list("pk", "name", "query"))
    post = {"saved_query": "tag=vip", "query": "tag=vip&ordering=name", **data}
    response = staff_client.post(_create_url(agent), post, **HX)
    assert response.status_code == 422
    html = unescape(response.content.decode())
    error = re.search(r'id="segment-create-error">([^<]*)<', html).group(1)
    assert message in error
    # The save form is open again, with what was typed, and nothing changed.
    assert re.search(r'<details class="menu menu-right segment-save" open>', html)
    assert set(Segment.objects.values_list("pk", "name", "query")) == before
    assert table_names(response) == ["Ada", "Bob"]


def test_names_are_per_person_and_shared_names_per_team(staff_user, admin_user, agent):
    _segment(agent, staff_user, "Churn risk")
    # Someone else may use the same name for their own segment, and share it...
    theirs = _segment(agent, admin_user, "churn RISK", shared=True)
    # ...but then the name is the team's: nobody else can share one by that name.
    mine = Segment.objects.get(owner=staff_user)
    with pytest.raises(ValidationFailed) as excinfo:
        segment_update(segment=mine, user=staff_user, is_admin=False, definitions={}, shared=True)
    assert "The team already shares a segment named “Churn risk”" in excinfo.value.fields["name"][0]
    assert Segment.objects.get(pk=mine.pk).shared is False
    assert theirs.shared


def test_a_person_keeps_at_most_a_hundred_segments(staff_user, agent):
    Segment.objects.bulk_create(
        Segment(agent=agent, owner=staff_user, name=f"S{n}", query="ordering=name")
        for n in range(MAX_SEGMENTS_PER_PERSON)
    )
    with pytest.raises(ValidationFailed, match="delete one first"):
        _segment(agent, staff_user, "One more")


def test_private_segments_are_their_owners_alone(
    staff_client, colleague, staff_user, agent, people
):
    private = _segment(agent, staff_user, "Mine only")
    url = list_url(agent)
    page = colleague.get(f"{url}?segment={private.pk}")
    assert page.status_code == 404
    html = unescape(page.content.decode())
    assert "No such segment here, or it is private to someone else." in html
    assert "Mine only" not in html
    assert len(table_names(page)) == 3  # the table itself is still there
    assert colleague.get(_count_url(agent, private)).status_code == 404
    for action in ("update", "rename", "delete"):
        response = colleague.post(_change_url(agent, private), {"action": action, "name": "Hijack"})
        assert response.status_code == 404
    private.refresh_from_db()
    assert private.name == "Mine only"


def test_shared_segments_are_changed_by_their_creator_or_an_admin(
    staff_client, colleague, admin_client, staff_user, agent, people
):
    shared = _segment(agent, staff_user, "Team VIPs", shared=True)
    url = f"{list_url(agent)}?segment={shared.pk}&{shared.query}"
    # A colleague sees it, may save a copy, but not change it.
    page = colleague.get(url + "&name__contains=a")
    html = unescape(page.content.decode())
    assert "Team VIPs" in html
    assert "by staff@acme.test" in html
    assert "Update segment" not in html
    assert "Delete segment" not in html
    assert "Discard changes" in html
    for action in ("update", "rename", "delete"):
        data = {"action": action, "name": "Mine now", "saved_query": "tag=vip"}
        assert colleague.post(_change_url(agent, shared), data).status_code == 403
    assert Segment.objects.get(pk=shared.pk).name == "Team VIPs"
    # An admin renames it; the sharing stays its creator's choice.
    response = admin_client.post(
        _change_url(agent, shared), {"action": "rename", "name": "Key accounts"}
    )
    assert response.status_code == 302
    shared.refresh_from_db()
    assert (shared.name, shared.shared) == ("Key accounts", True)
    page = admin_client.get(url)
    assert "Rename or share" not in page.content.decode()
    assert ">Rename<" in page.content.decode()
    # And deletes it: everyone loses it.
    response = admin_client.post(
        _change_url(agent, shared), {"action": "delete", "query": f"segment={shared.pk}&tag=vip"}
    )
    assert response.status_code == 302
    assert response.url == f"{list_url(agent)}?tag=vip"
    assert not Segment.objects.exists()
    assert _notice(admin_client.get(response.url)) == "Deleted segment “Key accounts”."


def test_the_creator_renames_shares_and_unshares(staff_client, staff_user, agent, people):
    segment = _segment(agent, staff_user, "Draft")
    response = staff_client.post(
        _change_url(agent, segment), {"action": "rename", "name": "Final", "shared": "on"}, **HX
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"{list_url(agent)}?segment={segment.pk}"
    segment.refresh_from_db()
    assert (segment.name, segment.shared) == ("Final", True)
    staff_client.post(_change_url(agent, segment), {"action": "rename", "name": "Final"})
    segment.refresh_from_db()
    assert segment.shared is False


def test_a_rename_that_cannot_apply_reopens_the_form(staff_client, staff_user, agent, people):
    _segment(agent, staff_user, "Taken")
    segment = _segment(agent, staff_user, "Draft")
    response = staff_client.post(
        _change_url(agent, segment),
        {"action": "rename", "name": "TAKEN", "query": f"segment={segment.pk}&tag=vip"},
        **HX,
    )
    assert response.status_code == 422
    html = unescape(response.content.decode())
    assert 'id="segment-rename-error">You already have a segment named “TAKEN”.<' in html
    assert 'value="TAKEN"' in html
    assert Segment.objects.get(pk=segment.pk).name == "Draft"


def test_segment_writes_need_post_csrf_access_and_a_known_action(
    staff_user, staff_client, agent, other_agent, people
):
    segment = _segment(agent, staff_user)
    assert staff_client.get(_create_url(agent)).status_code == 405
    assert staff_client.get(_change_url(agent, segment)).status_code == 405
    assert staff_client.post(_count_url(agent, segment)).status_code == 405
    response = staff_client.post(_change_url(agent, segment), {"action": "explode"})
    assert response.status_code == 400
    # Another workspace's agent, or this segment under it: 404.
    assert staff_client.post(_create_url(other_agent), {"name": "X"}).status_code == 404
    other = agent_url("contacts:segment_change", other_agent, segment_id=segment.pk)
    assert staff_client.post(other, {"action": "delete"}).status_code == 404
    assert Segment.objects.filter(agent=other_agent).count() == 0
    assert staff_client.get(f"{list_url(other_agent)}?segment={segment.pk}").status_code == 404
    # Signed out: to the sign-in page, nothing saved.
    anonymous = Client()
    assert anonymous.post(_create_url(agent), {"name": "X"}).status_code == 302
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(staff_user)
    assert strict.post(_create_url(agent), {"name": "No token"}).status_code == 403
    assert strict.post(_change_url(agent, segment), {"action": "delete"}).status_code == 403
    assert list(Segment.objects.values_list("name", flat=True)) == ["VIP"]


@pytest.mark.parametrize("value", ["abc", "0", "-1", "99999999999999999999999", ""])
def test_a_segment_parameter_that_is_no_id_is_a_missing_segment(staff_client, agent, value):
    ContactFactory(agent=agent, name="Still here")
    page = staff_client.get(list_url(agent), {"segment": value})
    assert page.status_code == 404
    assert table_names(page) == ["Still here"]


def test_services_refuse_changes_by_others(staff_user, admin_user, agent):
    private = _segment(agent, admin_user, "Admin's")
    with pytest.raises(ForbiddenError):
        segment_update(segment=private, user=staff_user, is_admin=False, definitions={}, name="x")
    with pytest.raises(ForbiddenError):
        segment_delete(segment=private, user=staff_user, is_admin=True)  # private: owner only
    shared = _segment(agent, staff_user, "Staff's", shared=True)
    with pytest.raises(ForbiddenError, match="share it or make it private"):
        segment_update(segment=shared, user=admin_user, is_admin=True, definitions={}, shared=False)
    segment_delete(segment=shared, user=admin_user, is_admin=True)
    assert list(Segment.objects.values_list("name", flat=True)) == ["Admin's"]


def test_a_saved_view_always_has_an_order(staff_user, agent):
    segment = _segment(agent, staff_user, query="")
    assert segment.query == "ordering=-created_at"


def test_the_database_keeps_names_unique_when_two_saves_race(staff_user, agent, monkeypatch):
    _segment(agent, staff_user, "Race")
    # As if another request saved "race" between this one's check and its insert.
    monkeypatch.setattr("contacts.services.segments._name_taken", lambda **kwargs: "")
    with pytest.raises(ValidationFailed) as excinfo:
        _segment(agent, staff_user, "RACE")
    assert excinfo.value.fields == {"name": ["That name is taken."]}
    assert Segment.objects.count() == 1


def test_an_erasure_redacts_the_person_in_saved_segments(
    staff_user, admin_user, admin_actor, agent, other_agent
):
    from contacts.services import contact_erase

    person = ContactFactory(
        agent=agent, name="Zebulon Quixley", email="zeb@quixley.example", phone="+14155559876"
    )
    about = _segment(
        agent, staff_user, "Zebulon Quixley follow-up", query="email=zeb@quixley.example&tag=vip"
    )
    phone = _segment(agent, admin_user, "Calls", shared=True, query="q=%2B1 415 555 9876")
    other = _segment(agent, staff_user, "Unrelated", query="email__contains=acme")
    elsewhere = Segment.objects.create(
        agent=other_agent, name="Zebulon Quixley", query="email=zeb%40quixley.example"
    )
    record = contact_erase(contact=person, actor=admin_actor)
    assert record["segments_redacted"] == 2
    about.refresh_from_db()
    assert about.name == "[erased name] follow-up"
    # The condition stays with a marker: it matches nobody rather than everybody.
    assert parse_qs(about.query) == {
        "email": ["[erased email]"],
        "tag": ["vip"],
        "ordering": ["-created_at"],
    }
    phone.refresh_from_db()
    assert "555" not in phone.query
    other.refresh_from_db()
    assert other.query == "email__contains=acme&ordering=-created_at"
    # Another agent's segments are another agent's people.
    elsewhere.refresh_from_db()
    assert elsewhere.name == "Zebulon Quixley"


def test_names_and_html_in_segments_are_shown_as_text(staff_client, staff_user, agent):
    segment = _segment(agent, staff_user, "<b>Bold</b> & co", query="q=%3Cscript%3E")
    page = staff_client.get(f"{list_url(agent)}?segment={segment.pk}", follow=True)
    html = page.content.decode()
    assert "<b>Bold</b>" not in html
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; co" in html
    assert "<script>" not in html.split("<body", 1)[1].replace("<script src=", "")
