"""Notes on a contact: the services (who may write what, what the history keeps, merges,
erasure, the data download) and the contact page's Notes card (htmx and plain forms)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from contacts.models import NOTE_MAX_LENGTH, AuditEvent, MergedContact, Note
from contacts.selectors import contact_export_data, contact_notes_page
from contacts.services import (
    contact_erase,
    contact_merge,
    contact_soft_delete,
    note_create,
    note_delete,
    note_update,
)
from core.actors import Actor
from core.errors import ConflictError, ForbiddenError, ValidationFailed
from core.plain_text import plain_text_html
from tests.factories import ContactFactory, MembershipFactory, UserFactory
from tests.helpers import HX, contact_url
from workspaces.models import Membership

pytestmark = pytest.mark.django_db


def _note_url(contact, note) -> str:
    return contact_url("note", contact, note_id=note.pk)


def _audit_changes(contact) -> list[dict]:
    return list(
        AuditEvent.objects.filter(contact_id=contact.pk)
        .order_by("created_at", "id")
        .values_list("changes", flat=True)
    )


@pytest.fixture
def other_staff(workspace):
    user = UserFactory(username="other@acme.test")
    MembershipFactory(user=user, workspace=workspace, role=Membership.Role.STAFF)
    return user


# --- Services -----------------------------------------------------------------------------------


def test_a_note_keeps_its_author_and_cleaned_text_and_the_history_names_it_by_id(
    contact, staff_actor, staff_user
):
    note = note_create(
        contact=contact,
        actor=staff_actor,
        body="  \r\nCalled\x00 about the invoice.\r\nWill call back\x0c.\n\n",
    )
    note.refresh_from_db()
    assert note.body == "Called about the invoice.\nWill call back."
    assert (note.author_id, note.author_name) == (staff_user.pk, "staff@acme.test")
    assert note.agent_id == contact.agent_id
    assert not note.edited
    event = AuditEvent.objects.get(contact_id=contact.pk)
    assert (event.action, event.channel, event.actor_user_id) == ("updated", "staff", staff_user.pk)
    assert event.changes == {"note_added": [None, note.pk]}
    assert "invoice" not in json.dumps(event.changes)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "Write something in the note first."),
        (" \n\t\r\n ", "Write something in the note first."),
        (None, "Write something in the note first."),
        (
            "x" * (NOTE_MAX_LENGTH + 1),
            "A note can be at most 5,000 characters; this one has 5,001.",
        ),
    ],
)
def test_an_empty_or_overlong_note_is_refused_and_nothing_is_written(
    contact, staff_actor, body, message
):
    with pytest.raises(ValidationFailed) as refused:
        note_create(contact=contact, actor=staff_actor, body=body)
    assert refused.value.fields == {"body": [message]}
    assert not Note.objects.exists()
    assert not AuditEvent.objects.filter(contact_id=contact.pk).exists()


def test_the_longest_note_fits_once_line_breaks_are_counted_as_one(contact, staff_actor):
    body = ("x" * 99 + "\r\n") * 50  # 5,050 characters as sent, 5,000 as stored
    note = note_create(contact=contact, actor=staff_actor, body=body)
    assert len(note.body) == NOTE_MAX_LENGTH - 1  # the last line break is trimmed


def test_only_the_author_edits_and_an_edit_is_marked_and_audited(contact, staff_actor, admin_actor):
    note = note_create(contact=contact, actor=staff_actor, body="First words")
    for stranger in (admin_actor,):
        with pytest.raises(ForbiddenError, match="Only the author"):
            note_update(contact=contact, note_id=note.pk, actor=stranger, body="Taken over")
    note_update(contact=contact, note_id=note.pk, actor=staff_actor, body="First words")
    assert len(_audit_changes(contact)) == 1  # the same text again writes nothing
    edited = note_update(contact=contact, note_id=note.pk, actor=staff_actor, body="Better words")
    edited.refresh_from_db()
    assert edited.body == "Better words"
    assert edited.edited
    assert _audit_changes(contact)[-1] == {"note_edited": [note.pk, note.pk]}


def test_the_author_or_an_admin_deletes_a_note_but_not_another_staff_member(
    contact, staff_actor, admin_actor, other_staff
):
    mine = note_create(contact=contact, actor=staff_actor, body="Mine")
    theirs = note_create(contact=contact, actor=admin_actor, body="The admin's")
    colleague = Actor.staff(other_staff, is_admin=False)
    with pytest.raises(ForbiddenError, match="author of a note or an admin"):
        note_delete(contact=contact, note_id=mine.pk, actor=colleague)
    with pytest.raises(ForbiddenError):
        note_delete(contact=contact, note_id=theirs.pk, actor=staff_actor)
    note_delete(contact=contact, note_id=mine.pk, actor=admin_actor)
    note_delete(contact=contact, note_id=theirs.pk, actor=admin_actor)
    assert not Note.objects.exists()
    assert _audit_changes(contact)[-2:] == [
        {"note_deleted": [mine.pk, None]},
        {"note_deleted": [theirs.pk, None]},
    ]


def test_notes_are_written_by_the_team_only(contact, api_actor, widget_actor):
    for actor in (api_actor, widget_actor, Actor.system()):
        with pytest.raises(ForbiddenError, match="members of the team"):
            note_create(contact=contact, actor=actor, body="Hello")
    assert not Note.objects.exists()


def test_a_deleted_contacts_notes_do_not_change_until_it_is_restored(
    contact, staff_actor, admin_actor
):
    note = note_create(contact=contact, actor=staff_actor, body="Kept")
    contact_soft_delete(contact=contact, actor=admin_actor)
    with pytest.raises(ConflictError, match="restore it"):
        note_create(contact=contact, actor=staff_actor, body="New")
    with pytest.raises(ConflictError):
        note_update(contact=contact, note_id=note.pk, actor=staff_actor, body="Changed")
    with pytest.raises(ConflictError):
        note_delete(contact=contact, note_id=note.pk, actor=staff_actor)
    assert list(Note.objects.values_list("body", flat=True)) == ["Kept"]


def test_a_merge_brings_the_notes_to_the_contact_kept(agent, contact, staff_actor, admin_actor):
    other = ContactFactory(agent=agent, name="Ada L.", email="ada.l@example.com")
    kept = note_create(contact=contact, actor=staff_actor, body="On the one kept")
    moved = note_create(contact=other, actor=staff_actor, body="On the one merged in")
    contact_merge(primary=contact, secondary=other, actor=admin_actor)
    assert set(Note.objects.filter(contact=contact).values_list("pk", flat=True)) == {
        kept.pk,
        moved.pk,
    }
    merged = AuditEvent.objects.get(contact_id=contact.pk, action="merged")
    assert merged.changes["notes_moved_in"] == [None, 1]
    assert MergedContact.objects.filter(pk=other.pk, into=contact).exists()


def test_erasure_removes_the_notes_and_redacts_the_person_in_other_notes(
    agent, contact, staff_actor, admin_actor
):
    note_create(contact=contact, actor=staff_actor, body="Prefers email, never calls")
    colleague = ContactFactory(agent=agent, name="Grace Hopper", email="grace@example.com")
    about = note_create(
        contact=colleague,
        actor=staff_actor,
        body="Same company as ada@example.com (Ada Lovelace); Ada said hello.",
    )
    unrelated = note_create(contact=colleague, actor=staff_actor, body="Nothing to see")
    elsewhere = ContactFactory(agent=ContactFactory().agent)
    foreign = note_create(contact=elsewhere, actor=staff_actor, body="ada@example.com")
    record = contact_erase(contact=contact, actor=admin_actor)
    assert (record["notes_deleted"], record["notes_redacted"]) == (1, 1)
    assert not Note.objects.filter(contact_id=contact.pk).exists()
    about.refresh_from_db()
    # Keys go everywhere; a single first name is not the person's alone.
    assert about.body == "Same company as [erased email] ([erased name]); Ada said hello."
    unrelated.refresh_from_db()
    assert unrelated.body == "Nothing to see"
    foreign.refresh_from_db()
    assert foreign.body == "ada@example.com"  # another agent's note is not this person's
    leftovers = json.dumps(list(AuditEvent.objects.values_list("changes", flat=True)))
    assert "Prefers email" not in leftovers


def test_the_data_download_holds_the_notes(contact, staff_actor):
    first = note_create(contact=contact, actor=staff_actor, body="Older")
    Note.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(days=1))
    note_create(contact=contact, actor=staff_actor, body="Newer\nwith a second line")
    notes = contact_export_data(contact=contact)["notes"]
    assert [n["body"] for n in notes] == ["Older", "Newer\nwith a second line"]
    assert notes[0]["author"] == "staff@acme.test"
    assert set(notes[0]) == {"author", "body", "created_at", "updated_at"}


def test_notes_page_newest_first_by_cursor(contact, staff_actor):
    start = timezone.now() - timedelta(hours=1)
    for i in range(23):
        note = note_create(contact=contact, actor=staff_actor, body=f"note {i}")
        # Two notes share each second: the id breaks the tie.
        Note.objects.filter(pk=note.pk).update(created_at=start + timedelta(seconds=i // 2))
    seen, cursor = [], None
    while True:
        page = contact_notes_page(contact=contact, cursor=cursor)
        assert page.total == 23
        seen += [n.body for n in page.items]
        cursor = page.older_cursor
        if not cursor:
            break
    assert seen == [f"note {i}" for i in reversed(range(23))]
    for bad in (
        "nope",
        "eyJ0IjoiMjAyNCJ9",
        "eyJ0IjoiMjAyNC0wMS0wMVQwMDowMDowMCswMDowMCIsImlkIjoieCJ9",
    ):
        with pytest.raises(ValueError, match="does not exist"):
            contact_notes_page(contact=contact, cursor=bad)


# --- Rendering ----------------------------------------------------------------------------------


def test_note_text_is_escaped_keeps_line_breaks_and_links_only_web_addresses():
    html = plain_text_html(
        "<script>alert(1)</script> & more\n"
        "See https://example.com/a?b=1&c=2. Or (http://x.test/wiki/Foo_(bar)), "
        "javascript:alert(1) data:text/html,hi https:// "
        'https://evil.test/"onmouseover="x'
    )
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more<br>See " in html
    assert (
        '<a href="https://example.com/a?b=1&amp;c=2" rel="noopener nofollow ugc" '
        'target="_blank">https://example.com/a?b=1&amp;c=2</a>. Or (' in html
    )
    assert 'href="http://x.test/wiki/Foo_(bar)"' in html
    assert "</a>), javascript:alert(1) data:text/html,hi https:// " in html
    assert html.count("<a ") == 3
    assert 'href="https://evil.test/"' in html
    assert "&quot;onmouseover=&quot;x" in html


# --- The Notes card -----------------------------------------------------------------------------


def test_the_contact_page_shows_notes_newest_first_with_author_and_edited(
    staff_client, contact, staff_actor, admin_actor
):
    old = note_create(contact=contact, actor=admin_actor, body="Old <b>news</b>")
    Note.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=2), updated_at=timezone.now()
    )
    note_create(contact=contact, actor=staff_actor, body="Fresh https://docs.example.com")
    html = staff_client.get(contact_url("detail", contact)).content.decode()
    card = html[html.index('id="contact-notes"') : html.index("<h2>Details</h2>")]
    assert card.index("Fresh") < card.index("Old &lt;b&gt;news&lt;/b&gt;")
    assert "staff@acme.test" in card
    assert "admin@acme.test" in card
    assert card.count('class="note-edited"') == 1
    assert 'href="https://docs.example.com" rel="noopener nofollow ugc"' in card
    # The staff member edits and deletes their own note only.
    assert card.count("Save note") == 1
    assert card.count('name="delete"') == 1
    assert 'id="notes-title">Notes <span class="muted count"' in card
    # The history says a note was added, by whom, and nothing of its text.
    history = html[html.index('id="contact-history"') :]
    assert history.count("Note added") == 2
    assert "Fresh" not in history


def test_an_admin_may_delete_every_note_and_edit_their_own(admin_client, contact, staff_actor):
    note_create(contact=contact, actor=staff_actor, body="By staff")
    html = admin_client.get(contact_url("detail", contact)).content.decode()
    assert html.count('name="delete"') == 1
    assert "Save note" not in html


def test_adding_a_note_with_htmx_answers_the_card_and_the_history(
    staff_client, contact, staff_user
):
    response = staff_client.post(contact_url("notes", contact), {"body": "Wants a refund"}, **HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="contact-notes"')
    assert "Wants a refund" in html
    assert '<textarea id="note-body" name="body"' in html
    assert re.search(r'<textarea id="note-body"[^>]*></textarea>', html)  # emptied for the next
    assert 'id="contact-history" class="card" hx-swap-oob="true"' in html
    assert "Note added" in html
    assert "Note added." in html  # announced
    note = Note.objects.get()
    assert (note.contact_id, note.author_id, note.body) == (
        contact.pk,
        staff_user.pk,
        "Wants a refund",
    )


def test_adding_a_note_without_javascript_redirects_back_to_the_notes(staff_client, contact):
    response = staff_client.post(contact_url("notes", contact), {"body": "Plain form"})
    assert response.status_code == 302
    assert response.url == contact_url("detail", contact) + "#contact-notes"
    assert Note.objects.get().body == "Plain form"
    assert "Note added." in staff_client.get(response.url).content.decode()


def test_a_refused_note_comes_back_with_its_text_and_the_reason(staff_client, contact):
    long = "y" * (NOTE_MAX_LENGTH + 7)
    response = staff_client.post(contact_url("notes", contact), {"body": long}, **HX)
    assert response.status_code == 422
    html = response.content.decode()
    assert "A note can be at most 5,000 characters; this one has 5,007." in html
    assert f">{long}</textarea>" in html
    assert 'aria-invalid="true"' in html
    # Without JavaScript: the whole page, the text kept.
    plain = staff_client.post(contact_url("notes", contact), {"body": "   "})
    assert plain.status_code == 422
    page = plain.content.decode()
    assert "<h2>Details</h2>" in page
    assert 'id="note-error">Write something in the note first.</p>' in page
    assert not Note.objects.exists()
    assert not AuditEvent.objects.filter(contact_id=contact.pk).exists()


def test_the_author_edits_a_note_in_place(staff_client, contact, staff_actor):
    note = note_create(contact=contact, actor=staff_actor, body="Typo here")
    response = staff_client.post(_note_url(contact, note), {"body": "No typo here"}, **HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "No typo here" in html
    assert 'class="note-edited"' in html
    assert "Note edited" in html
    note.refresh_from_db()
    assert note.body == "No typo here"
    refused = staff_client.post(_note_url(contact, note), {"body": ""}, **HX)
    assert refused.status_code == 422
    text = refused.content.decode()
    assert '<details class="note-edit" open>' in text
    assert f'id="note-{note.pk}-error">Write something in the note first.</p>' in text
    note.refresh_from_db()
    assert note.body == "No typo here"


def test_someone_elses_note_cannot_be_edited_or_deleted_by_staff(
    staff_client, contact, admin_actor
):
    note = note_create(contact=contact, actor=admin_actor, body="Admin's words")
    assert (
        staff_client.post(_note_url(contact, note), {"body": "Mine now"}, **HX).status_code == 403
    )
    assert staff_client.post(_note_url(contact, note), {"delete": "1"}).status_code == 403
    note.refresh_from_db()
    assert note.body == "Admin's words"
    assert len(_audit_changes(contact)) == 1


def test_an_admin_deletes_a_staff_note(admin_client, contact, staff_actor, admin_user):
    note = note_create(contact=contact, actor=staff_actor, body="Out of date")
    response = admin_client.post(_note_url(contact, note), {"delete": "1"}, **HX)
    assert response.status_code == 200
    assert "Out of date" not in response.content.decode().split('id="contact-history"')[0]
    assert "Note deleted" in response.content.decode()
    assert not Note.objects.exists()
    event = AuditEvent.objects.filter(contact_id=contact.pk).latest("id")
    assert (event.actor_user_id, event.changes) == (
        admin_user.pk,
        {"note_deleted": [note.pk, None]},
    )


def test_a_note_deleted_meanwhile_is_a_notice_in_the_page_and_404_on_its_own(
    staff_client, contact, staff_actor
):
    note = note_create(contact=contact, actor=staff_actor, body="Gone soon")
    Note.objects.filter(pk=note.pk).delete()
    response = staff_client.post(_note_url(contact, note), {"delete": "1"}, **HX)
    assert response.status_code == 409
    assert "That note was deleted in the meantime." in response.content.decode()
    assert staff_client.post(_note_url(contact, note), {"body": "x"}).status_code == 404


def test_a_note_is_reached_only_through_its_own_contact(
    staff_client, agent, contact, staff_actor, other_agent
):
    note = note_create(contact=contact, actor=staff_actor, body="Ada's")
    sibling = ContactFactory(agent=agent)
    assert staff_client.post(_note_url(sibling, note), {"delete": "1"}).status_code == 404
    huge = contact_url("note", contact, note_id=10**20)  # beyond any id column: still 404
    assert staff_client.post(huge, {"delete": "1"}).status_code == 404
    theirs = ContactFactory(agent=other_agent)
    their_note = Note.objects.create(contact=theirs, agent=other_agent, body="Globex secret")
    for url, data in (
        (contact_url("notes", theirs), {"body": "Hi"}),
        (_note_url(theirs, their_note), {"body": "Hi"}),
        (_note_url(theirs, their_note), {"delete": "1"}),
    ):
        assert staff_client.post(url, data).status_code == 404
        assert staff_client.post(url, data, **HX).status_code == 404
    assert Note.objects.filter(contact=theirs).get().body == "Globex secret"
    assert Note.objects.filter(pk=note.pk).exists()
    assert "Globex secret" not in staff_client.get(contact_url("detail", contact)).content.decode()


def test_note_writes_need_post_and_a_signed_in_member(client, staff_client, contact, staff_actor):
    note = note_create(contact=contact, actor=staff_actor, body="Hi")
    for url in (contact_url("notes", contact), _note_url(contact, note)):
        assert staff_client.get(url).status_code == 405
        response = client.post(url, {"body": "anonymous"})
        assert response.status_code == 302
        assert "/login/" in response.url
    outsider = UserFactory(username="outsider@example.com")
    client.force_login(outsider)
    assert client.post(contact_url("notes", contact), {"body": "x"}).status_code == 404
    assert list(Note.objects.values_list("body", flat=True)) == ["Hi"]


def test_a_note_form_needs_the_csrf_token(staff_user, contact):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(staff_user)
    assert strict.post(contact_url("notes", contact), {"body": "x"}).status_code == 403
    assert not Note.objects.exists()


def test_a_deleted_contact_shows_its_notes_without_forms(
    staff_client, contact, staff_actor, admin_actor
):
    note_create(contact=contact, actor=staff_actor, body="Before deletion")
    contact_soft_delete(contact=contact, actor=admin_actor)
    html = staff_client.get(contact_url("detail", contact)).content.decode()
    assert "Before deletion" in html
    assert 'id="note-body"' not in html
    assert "Save note" not in html
    assert "Merge with…" not in html
    response = staff_client.post(contact_url("notes", contact), {"body": "After"}, **HX)
    assert response.status_code == 409
    assert "restore it to change its notes" in response.content.decode()
    plain = staff_client.post(contact_url("notes", contact), {"body": "After"})
    assert plain.status_code == 302
    assert Note.objects.count() == 1


def test_older_notes_page_in_the_card_and_as_a_link(staff_client, contact, staff_actor):
    start = timezone.now() - timedelta(hours=1)
    for i in range(12):
        note = note_create(contact=contact, actor=staff_actor, body=f"Note number {i:02}")
        Note.objects.filter(pk=note.pk).update(created_at=start + timedelta(minutes=i))
    html = staff_client.get(contact_url("detail", contact)).content.decode()
    assert "Note number 11" in html
    assert "Note number 02" in html
    assert "Note number 01" not in html
    older = re.search(r'href="([^"]*\?notes=[^"#]*)#contact-notes"[^>]*>Older notes', html)
    fragment = staff_client.get(older.group(1), HTTP_HX_TARGET="contact-notes", **HX)
    text = fragment.content.decode()
    assert text.lstrip().startswith('<section id="contact-notes"')
    assert "Note number 01" in text
    assert "Note number 00" in text
    assert "Note number 02" not in text
    assert "Newest notes" in text
    assert "Older notes" not in text
    page = staff_client.get(older.group(1)).content.decode()  # without JavaScript
    assert "<h2>Details</h2>" in page
    assert "Note number 00" in page
    broken = staff_client.get(contact_url("detail", contact) + "?notes=garbage").content.decode()
    assert "That page of notes does not exist; showing the newest." in broken
    assert "Note number 11" in broken


def test_the_contact_page_query_count_stays_flat_as_notes_grow(
    staff_client, contact, staff_actor, django_assert_num_queries
):
    url = contact_url("detail", contact)
    note_create(contact=contact, actor=staff_actor, body="one")
    with CaptureQueriesContext(connection) as baseline:
        staff_client.get(url)
    for i in range(30):
        note_create(contact=contact, actor=staff_actor, body=f"more {i}")
    with django_assert_num_queries(len(baseline.captured_queries)):
        html = staff_client.get(url).content.decode()
    assert html.count('class="note"') == 10


def test_the_notes_fragment_reads_the_notes_in_two_queries(
    staff_client, contact, staff_actor, django_assert_num_queries
):
    url = contact_url("detail", contact)
    note_create(contact=contact, actor=staff_actor, body="first")
    with CaptureQueriesContext(connection) as baseline:
        staff_client.get(url, HTTP_HX_TARGET="contact-notes", **HX)
    for i in range(15):
        note_create(contact=contact, actor=staff_actor, body=f"n{i}")
    with django_assert_num_queries(len(baseline.captured_queries)) as captured:
        response = staff_client.get(url, HTTP_HX_TARGET="contact-notes", **HX)
    assert response.content.decode().count('class="note"') == 10
    # The count and the page, each on the (contact, -created_at, -id) index.
    assert sum("contacts_note" in q["sql"] for q in captured.captured_queries) == 2
