"""The import job page: the type of a new attribute is asked only for a column that creates
one, and a quick import says how long it took in seconds."""

from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from contacts.models import Contact
from tests.transfers.conftest import upload
from transfers.imports.engine import import_run
from transfers.models import ContactImport
from transfers.services import import_create, import_start

pytestmark = pytest.mark.django_db

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


class _TypeSelects(HTMLParser):
    """{select name: whether an element around it has the `hidden` attribute} for the
    "type of the new attribute" selects."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[tuple[str, bool]] = []
        self.found: dict[str, bool] = {}

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        name = attributes.get("name") or ""
        if tag == "select" and name.startswith("type-"):
            self.found[name] = any(hidden for _, hidden in self.open)
        if tag not in VOID:
            self.open.append((tag, "hidden" in attributes))

    def handle_endtag(self, tag):
        for index in range(len(self.open) - 1, -1, -1):
            if self.open[index][0] == tag:
                del self.open[index:]
                break


def type_selects(page: str) -> dict[str, bool]:
    parser = _TypeSelects()
    parser.feed(page)
    return parser.found


def job_url(job: ContactImport) -> str:
    return reverse(
        "transfers:import_job", kwargs={"agent_public_id": job.agent.public_id, "import_id": job.pk}
    )


def test_the_new_attribute_type_shows_only_for_a_column_that_creates_one(admin_client, agent):
    job = import_create(
        agent=agent,
        upload=upload("Full name,Notes,Favourite Colour\nAda,first,red\nGrace,second,blue\n"),
        actor_label="import by test",
        mapping={
            "Full name": "name",
            "Notes": "ignore",
            "Favourite Colour": "new:favourite_colour",
        },
        new_attributes={"favourite_colour": "text"},
    )
    assert job.mapping == {
        "Full name": "name",
        "Notes": "ignore",
        "Favourite Colour": "new:favourite_colour",
    }

    page = admin_client.get(job_url(job)).content.decode()

    # Each column could create an attribute, so each row has the select; only the one that
    # does shows it.
    assert type_selects(page) == {"type-0": True, "type-1": True, "type-2": False}


def test_a_quick_import_says_how_long_it_took_in_seconds(admin_client, agent):
    content = "email\n" + "".join(f"person{n}@example.com\n" for n in range(60))
    job = import_create(agent=agent, upload=upload(content), actor_label="import by test")
    import_start(job=job, dry_run=False)
    import_run(job.pk)
    job.refresh_from_db()
    assert job.status == ContactImport.Status.COMPLETED
    assert Contact.objects.filter(agent=agent).count() == 60

    started = job.started_at
    ContactImport.objects.filter(pk=job.pk).update(
        started_at=started, finished_at=started + timedelta(seconds=12)
    )
    page = admin_client.get(job_url(job)).content.decode()
    assert "60 rows in 12 seconds" in page
    assert "0 minutes" not in page

    ContactImport.objects.filter(pk=job.pk).update(
        finished_at=started + timedelta(milliseconds=400)
    )
    page = admin_client.get(job_url(job)).content.decode()
    assert "60 rows in under a second" in page
    assert "0 minutes" not in page
