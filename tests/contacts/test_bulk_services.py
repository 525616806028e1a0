"""Bulk actions on a batch of contacts (transfers.bulk.actions): what each one changes, the
audit entry it leaves per contact, and that running a batch twice changes nothing more."""

from __future__ import annotations

import pytest
from django.http import QueryDict
from django.utils import timezone

from contacts.display import history
from contacts.models import AuditEvent, Contact, ContactTag, Tag
from core.errors import ValidationFailed
from tests.factories import ContactFactory, TagFactory
from transfers.bulk.actions import (
    BulkAction,
    bulk_action_clean,
    bulk_apply,
    bulk_filter_query,
    bulk_matching,
    bulk_next_ids,
)

pytestmark = pytest.mark.django_db


def _tags(contact) -> set[str]:
    return set(Tag.objects.filter(contact_tags__contact=contact).values_list("name", flat=True))


def _events(contact, action=None) -> list[AuditEvent]:
    events = AuditEvent.objects.filter(contact_id=contact.pk)
    if action:
        events = events.filter(action=action)
    return list(events)


# --- Checking what was asked for -----------------------------------------------------------------


def test_a_tag_is_normalized_and_a_missing_or_bad_one_names_the_field(agent, staff_actor):
    action = bulk_action_clean(
        agent=agent, actor=staff_actor, action="tag", data={"tag": "  v  ip "}
    )
    assert action == BulkAction("tag", {"tag": "v ip"})
    with pytest.raises(ValidationFailed) as missing:
        bulk_action_clean(agent=agent, actor=staff_actor, action="tag", data={"tag": "  "})
    assert missing.value.fields == {"tag": ["Type the tag to add."]}
    with pytest.raises(ValidationFailed) as removing:
        bulk_action_clean(agent=agent, actor=staff_actor, action="untag", data={})
    assert removing.value.fields == {"tag": ["Type the tag to remove."]}
    with pytest.raises(ValidationFailed) as comma:
        bulk_action_clean(agent=agent, actor=staff_actor, action="tag", data={"tag": "a,b"})
    assert comma.value.fields == {"tag": ["Tag 'a,b' may not contain a comma."]}
    with pytest.raises(ValidationFailed) as unknown:
        bulk_action_clean(agent=agent, actor=staff_actor, action="explode", data={})
    assert unknown.value.fields == {"action": ["Unknown bulk action 'explode'."]}


def test_an_attribute_value_is_typed_like_the_contact_form(agent, schema, staff_actor):
    def clean(key, value):
        data = {"attribute": key, "value": value}
        return bulk_action_clean(agent=agent, actor=staff_actor, action="set_attribute", data=data)

    assert clean("mrr", "42").params == {"key": "mrr", "value": 42, "label": "MRR", "shown": "42"}
    assert clean("beta", "yes").params["value"] is True
    assert clean("signup", "2024-03-31").params["value"] == "2024-03-31"
    assert clean("plan", "Pro").summary == "Set Plan to “Pro”"
    # An empty value clears the attribute.
    assert clean("plan", "").params["value"] is None
    assert clean("plan", "").summary == "Clear Plan"
    with pytest.raises(ValidationFailed) as number:
        clean("mrr", "lots")
    assert number.value.fields == {"value": ["MRR must be a number."]}
    with pytest.raises(ValidationFailed) as option:
        clean("plan", "Gold")
    assert option.value.fields == {"value": ["Plan must be one of: Free, Pro."]}
    with pytest.raises(ValidationFailed) as unknown:
        clean("nope", "1")
    assert unknown.value.fields == {"attribute": ["Choose an attribute to set."]}


def test_only_admins_may_set_a_secure_attribute(agent, schema, staff_actor, admin_actor):
    data = {"attribute": "ltv", "value": "100"}
    with pytest.raises(ValidationFailed) as refused:
        bulk_action_clean(agent=agent, actor=staff_actor, action="set_attribute", data=data)
    assert "only admins" in refused.value.fields["value"][0]
    action = bulk_action_clean(agent=agent, actor=admin_actor, action="set_attribute", data=data)
    assert action.params["value"] == 100


def test_an_archived_attribute_cannot_be_set(agent, schema, admin_actor):
    schema["city"].archived = True
    schema["city"].save()
    with pytest.raises(ValidationFailed) as refused:
        bulk_action_clean(
            agent=agent,
            actor=admin_actor,
            action="set_attribute",
            data={"attribute": "city", "value": "Paris"},
        )
    assert refused.value.fields == {"attribute": ["Choose an attribute to set."]}


# --- Applying to a batch ---------------------------------------------------------------------


def test_adding_a_tag_links_it_once_audits_each_contact_that_gained_it(agent, staff_actor):
    vip = TagFactory(agent=agent, name="VIP")
    had, new, other = ContactFactory.create_batch(3, agent=agent)
    had.tags.add(vip)
    before = timezone.now()
    action = BulkAction("tag", {"tag": "vip"})
    changed = bulk_apply(
        agent=agent, actor=staff_actor, action=action, contact_ids=[had.pk, new.pk]
    )
    assert changed == [new.pk]
    assert (_tags(new), _tags(had), _tags(other)) == ({"VIP"}, {"VIP"}, set())
    (event,) = _events(new)
    assert (event.action, event.changes, event.actor_label) == (
        "updated",
        {"tags_added": ["VIP"]},
        "staff@acme.test",
    )
    assert _events(had) == []
    new.refresh_from_db()
    had.refresh_from_db()
    assert new.updated_at >= before > had.updated_at
    # Run again: nothing more is linked or audited.
    again = bulk_apply(agent=agent, actor=staff_actor, action=action, contact_ids=[had.pk, new.pk])
    assert again == []
    assert ContactTag.objects.filter(tag=vip).count() == 2
    assert AuditEvent.objects.count() == 1


def test_a_new_tag_is_created_for_the_agent(agent, staff_actor):
    contact = ContactFactory(agent=agent)
    bulk_apply(
        agent=agent,
        actor=staff_actor,
        action=BulkAction("tag", {"tag": "spring sale"}),
        contact_ids=[contact.pk],
    )
    assert list(Tag.objects.filter(agent=agent).values_list("name", flat=True)) == ["spring sale"]
    assert _tags(contact) == {"spring sale"}


def test_removing_a_tag_unlinks_it_from_those_that_had_it(agent, staff_actor, schema):
    vip = TagFactory(agent=agent, name="vip")
    keep = TagFactory(agent=agent, name="keep")
    a, b = ContactFactory.create_batch(2, agent=agent)
    a.tags.add(vip, keep)
    action = BulkAction("untag", {"tag": "VIP"})
    assert bulk_apply(agent=agent, actor=staff_actor, action=action, contact_ids=[a.pk, b.pk]) == [
        a.pk
    ]
    assert _tags(a) == {"keep"}
    (event,) = _events(a)
    assert event.changes == {"tags_removed": ["vip"]}
    # The contact page reads it as a removal.
    (entry,) = history([event], schema)
    assert [(c.label, c.removed) for c in entry.changes] == [("Tags removed", ["vip"])]
    assert bulk_apply(agent=agent, actor=staff_actor, action=action, contact_ids=[a.pk]) == []
    # A tag the agent does not have is simply not there to remove.
    missing = BulkAction("untag", {"tag": "ghost"})
    assert bulk_apply(agent=agent, actor=staff_actor, action=missing, contact_ids=[a.pk]) == []


def test_setting_an_attribute_writes_the_typed_value_and_audits_before_and_after(
    agent, schema, staff_actor
):
    free = ContactFactory(agent=agent, attributes={"plan": "Free", "mrr": 5})
    pro = ContactFactory(agent=agent, attributes={"plan": "Pro"})
    blank = ContactFactory(agent=agent, attributes={})
    action = BulkAction("set_attribute", {"key": "plan", "value": "Pro", "label": "Plan"})
    changed = bulk_apply(
        agent=agent, actor=staff_actor, action=action, contact_ids=[free.pk, pro.pk, blank.pk]
    )
    assert set(changed) == {free.pk, blank.pk}
    for contact in (free, pro, blank):
        contact.refresh_from_db()
    assert free.attributes == {"plan": "Pro", "mrr": 5}
    assert blank.attributes == {"plan": "Pro"}
    assert _events(free)[0].changes == {"attributes.plan": ["Free", "Pro"]}
    assert _events(blank)[0].changes == {"attributes.plan": [None, "Pro"]}
    assert _events(pro) == []
    # Numbers and booleans stay typed in the JSON (sortable and filterable as such).
    number = BulkAction("set_attribute", {"key": "mrr", "value": 99.5, "label": "MRR"})
    flag = BulkAction("set_attribute", {"key": "beta", "value": True, "label": "Beta"})
    bulk_apply(agent=agent, actor=staff_actor, action=number, contact_ids=[pro.pk])
    bulk_apply(agent=agent, actor=staff_actor, action=flag, contact_ids=[pro.pk])
    pro.refresh_from_db()
    assert pro.attributes == {"plan": "Pro", "mrr": 99.5, "beta": True}
    assert Contact.objects.filter(agent=agent, attributes__mrr__gt=99).get() == pro
    assert Contact.objects.filter(agent=agent, attributes__beta=True).get() == pro


def test_clearing_an_attribute_removes_the_key(agent, schema, staff_actor):
    a = ContactFactory(agent=agent, attributes={"plan": "Pro", "mrr": 5})
    b = ContactFactory(agent=agent, attributes={"mrr": 1})
    action = BulkAction("set_attribute", {"key": "plan", "value": None, "label": "Plan"})
    assert bulk_apply(agent=agent, actor=staff_actor, action=action, contact_ids=[a.pk, b.pk]) == [
        a.pk
    ]
    a.refresh_from_db()
    assert a.attributes == {"mrr": 5}
    assert _events(a)[0].changes == {"attributes.plan": ["Pro", None]}
    assert action.done_text(1, 1) == "Cleared Plan on 1 contact (1 had no value)."


def test_delete_and_restore_change_only_those_not_already_so(agent, staff_actor):
    live, gone = ContactFactory(agent=agent), ContactFactory(agent=agent, deleted_at=timezone.now())
    deleted = bulk_apply(
        agent=agent, actor=staff_actor, action=BulkAction("delete"), contact_ids=[live.pk, gone.pk]
    )
    assert deleted == [live.pk]
    assert Contact.objects.filter(agent=agent, deleted_at__isnull=True).count() == 0
    assert [e.action for e in _events(live)] == ["deleted"]
    restored = bulk_apply(
        agent=agent, actor=staff_actor, action=BulkAction("restore"), contact_ids=[live.pk, gone.pk]
    )
    assert set(restored) == {live.pk, gone.pk}
    assert Contact.objects.filter(agent=agent, deleted_at__isnull=True).count() == 2
    assert [e.action for e in _events(gone)] == ["restored"]


@pytest.mark.parametrize(
    "action",
    [
        BulkAction("tag", {"tag": "x"}),
        BulkAction("untag", {"tag": "x"}),
        BulkAction("set_attribute", {"key": "city", "value": "Oslo", "label": "City"}),
        BulkAction("delete"),
        BulkAction("restore"),
    ],
    ids=lambda a: a.action,
)
def test_another_agents_contacts_are_never_touched(agent, other_agent, schema, staff_actor, action):
    theirs = ContactFactory(agent=other_agent, attributes={}, deleted_at=None)
    TagFactory(agent=other_agent, name="x")
    theirs.tags.add(Tag.objects.get(agent=other_agent))
    before = Contact.objects.values().get(pk=theirs.pk)
    assert bulk_apply(agent=agent, actor=staff_actor, action=action, contact_ids=[theirs.pk]) == []
    assert Contact.objects.values().get(pk=theirs.pk) == before
    assert _tags(theirs) == {"x"}
    assert AuditEvent.objects.count() == 0


def test_the_outcome_reads_as_a_sentence():
    assert BulkAction("tag", {"tag": "vip"}).done_text(2) == "Tagged 2 contacts with “vip”."
    assert (
        BulkAction("tag", {"tag": "vip"}).done_text(1, 3)
        == "Tagged 1 contact with “vip” (3 already had it)."
    )
    assert (
        BulkAction("untag", {"tag": "vip"}).done_text(1_234, 0)
        == "Removed the tag “vip” from 1,234 contacts."
    )
    assert BulkAction("delete").done_text(2, 1) == "Deleted 2 contacts (1 were already deleted)."
    assert BulkAction("restore").done_text(1) == "Restored 1 contact."
    action = BulkAction(
        "set_attribute", {"key": "plan", "value": "Pro", "label": "Plan", "shown": "Pro"}
    )
    assert action.done_text(3, 1) == "Set Plan to “Pro” on 3 contacts (1 already had that value)."


# --- The view a job works on ------------------------------------------------------------------


def test_the_frozen_view_keeps_filters_only(agent):
    state = QueryDict(
        "q=ada&tag=vip&ordering=-name&cursor=abc&at=51&per_page=100&cols=email&attr.plan=Pro"
        "&deleted=true&segment=7",
        mutable=True,
    )
    assert QueryDict(bulk_filter_query(state)) == QueryDict(
        "q=ada&tag=vip&attr.plan=Pro&deleted=true"
    )


def test_the_matching_contacts_are_read_through_the_table_filters(agent, schema):
    vip = TagFactory(agent=agent, name="vip")
    ada = ContactFactory(agent=agent, name="Ada", attributes={"plan": "Pro"})
    ContactFactory(agent=agent, name="Ada Other", attributes={"plan": "Free"})
    ContactFactory(agent=agent, name="Bob", attributes={"plan": "Pro"})
    gone = ContactFactory(agent=agent, name="Ada Gone", attributes={"plan": "Pro"})
    gone.deleted_at = timezone.now()
    gone.save()
    ada.tags.add(vip)
    assert list(bulk_matching(agent=agent, query="q=ada&attr.plan=Pro")) == [ada]
    assert list(bulk_matching(agent=agent, query="tag=vip")) == [ada]
    assert list(bulk_matching(agent=agent, query="q=ada&deleted=true")) == [gone]
    with pytest.raises(ValidationFailed) as stale:
        bulk_matching(agent=agent, query="attr.gone=1")
    assert stale.value.fields == {"attr.gone": ["No attribute with key 'gone'."]}


def test_batches_walk_the_ids_in_order(agent):
    contacts = sorted(ContactFactory.create_batch(5, agent=agent), key=lambda c: c.pk)
    qs = Contact.objects.filter(agent=agent)
    first = bulk_next_ids(qs, after=None, size=2)
    second = bulk_next_ids(qs, after=first[-1], size=2)
    third = bulk_next_ids(qs, after=second[-1], size=2)
    assert first + second + third == [c.pk for c in contacts]
    assert bulk_next_ids(qs, after=third[-1], size=2) == []


def test_a_view_matching_any_of_its_conditions_is_kept_as_such(agent, schema):
    pro = ContactFactory(agent=agent, name="Pro", attributes={"plan": "Pro"})
    acme = ContactFactory(agent=agent, name="Acme", email="ops@acme.test", attributes={})
    ContactFactory(agent=agent, name="Neither", email="x@y.test", attributes={"plan": "Free"})
    query = "match=any&attr.plan=Pro&email__contains=acme"
    assert set(bulk_matching(agent=agent, query=query)) == {pro, acme}
    assert list(bulk_matching(agent=agent, query=query.replace("any", "all"))) == []
