from __future__ import annotations

import pytest

from attributes.models import AttributeDefinition
from contacts import services
from contacts.models import AuditEvent, Contact, ContactTag, Identity, StripeAccount, Tag
from contacts.selectors import contact_export_data
from core.actors import Actor
from core.errors import ConflictError, ForbiddenError, ValidationFailed
from helpdesk.models import Conversation
from identity.models import VisitorSession
from tests.factories import (
    AttributeFactory,
    ContactFactory,
    ConversationFactory,
    StripeAccountFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(agent):
    return {
        "plan": AttributeFactory(
            agent=agent, key="plan", type="select", options=["Free", "Pro", "Enterprise"]
        ),
        "mrr": AttributeFactory(agent=agent, key="mrr", type="number"),
        "beta": AttributeFactory(agent=agent, key="beta", type="boolean"),
        "stripe_customer": AttributeFactory(agent=agent, key="stripe_customer", secure=True),
    }


# --- upsert --------------------------------------------------------------------------------


def test_upsert_creates_then_updates_the_same_contact(agent, api_actor, schema):
    first = services.contact_upsert(
        agent=agent,
        actor=api_actor,
        external_id="u-1",
        data={"name": "Jane", "email": "Jane@Example.com", "attributes": {"mrr": "49"}},
    )
    second = services.contact_upsert(
        agent=agent,
        actor=api_actor,
        external_id="u-1",
        data={"company": "Acme", "attributes": {"plan": "pro"}},
    )
    assert first.created
    assert first.outcome == "created"
    assert not second.created
    assert second.outcome == "updated"
    assert Contact.objects.filter(agent=agent).count() == 1
    contact = Contact.objects.get()
    assert contact.pk == first.contact.pk
    assert contact.email == "Jane@example.com"
    assert contact.company == "Acme"
    assert contact.attributes == {"mrr": 49, "plan": "Pro"}
    assert contact.identity == Identity.VERIFIED
    assert contact.verified_at is not None


def test_upsert_with_identical_data_is_unchanged_and_writes_no_audit(agent, api_actor):
    data = {"name": "Jane", "email": "jane@example.com"}
    services.contact_upsert(agent=agent, actor=api_actor, external_id="u-1", data=data)
    events = AuditEvent.objects.count()
    again = services.contact_upsert(agent=agent, actor=api_actor, external_id="u-1", data=data)
    assert again.outcome == "unchanged"
    assert AuditEvent.objects.count() == events


def test_upsert_restores_a_soft_deleted_contact(agent, api_actor):
    created = services.contact_upsert(
        agent=agent, actor=api_actor, external_id="u-1", data={"name": "Jane"}
    )
    services.contact_soft_delete(contact=created.contact, actor=api_actor)
    again = services.contact_upsert(
        agent=agent, actor=api_actor, external_id="u-1", data={"name": "Jane B."}
    )
    assert again.contact.pk == created.contact.pk
    assert again.contact.deleted_at is None
    assert again.changes["deleted_at"][1] is None
    assert Contact.objects.count() == 1


def test_upsert_recovers_when_another_writer_inserts_first(agent, api_actor, monkeypatch):
    """The losing side of an INSERT race updates the winner's row instead of failing."""
    from contacts.services import writes

    real_locked_by = writes._locked_by
    calls = {"n": 0}

    def racing_locked_by(agent_, **lookup):
        calls["n"] += 1
        if calls["n"] == 1:
            # Another request commits the same external id between our SELECT and INSERT.
            ContactFactory(agent=agent_, external_id="u-race", name="Winner")
            return None
        return real_locked_by(agent_, **lookup)

    monkeypatch.setattr(writes, "_locked_by", racing_locked_by)
    result = services.contact_upsert(
        agent=agent, actor=api_actor, external_id="u-race", data={"company": "Loser Inc"}
    )
    assert not result.created
    contact = Contact.objects.get(agent=agent, external_id="u-race")
    assert contact.name == "Winner"
    assert contact.company == "Loser Inc"
    assert Contact.objects.filter(agent=agent).count() == 1


def test_external_ids_are_per_agent(agent, other_agent, api_actor):
    services.contact_upsert(agent=agent, actor=api_actor, external_id="u-1", data={})
    services.contact_upsert(agent=other_agent, actor=api_actor, external_id="u-1", data={})
    assert Contact.objects.filter(external_id="u-1").count() == 2


def test_untrusted_channels_cannot_upsert_by_external_id(agent, widget_actor):
    with pytest.raises(ForbiddenError):
        services.contact_upsert(agent=agent, actor=widget_actor, external_id="u-1", data={})
    assert not Contact.objects.exists()


def test_invalid_input_is_refused_field_by_field_and_changes_nothing(agent, api_actor, schema):
    with pytest.raises(ValidationFailed) as excinfo:
        services.contact_upsert(
            agent=agent,
            actor=api_actor,
            external_id="u-1",
            data={
                "email": "not-an-email",
                "phone": "12",
                "attributes": {"mrr": "lots", "plan": "Gold", "nope": 1},
                "shoe_size": 44,
            },
        )
    fields = excinfo.value.fields
    assert set(fields) == {
        "email",
        "phone",
        "attributes.mrr",
        "attributes.plan",
        "attributes.nope",
        "shoe_size",
    }
    assert "mrr: not a number (expected number, got 'lots')" in fields["attributes.mrr"][0]
    assert not Contact.objects.exists()
    assert not AuditEvent.objects.exists()


# --- update --------------------------------------------------------------------------------


def test_update_merges_attributes_key_by_key_and_null_clears(agent, api_actor, schema):
    contact = ContactFactory(agent=agent, attributes={"plan": "Free", "mrr": 10})
    result = services.contact_update(
        contact=contact, actor=api_actor, data={"attributes": {"mrr": None, "beta": "yes"}}
    )
    assert result.contact.attributes == {"plan": "Free", "beta": True}
    assert result.changes == {"attributes.mrr": [10, None], "attributes.beta": [None, True]}
    event = AuditEvent.objects.get(contact_id=contact.pk, action="updated")
    assert event.channel == "api"
    assert event.changes["attributes.beta"] == [None, True]


def test_a_boolean_becoming_a_number_is_a_change(agent, api_actor):
    AttributeFactory(agent=agent, key="score", type="number")
    contact = ContactFactory(agent=agent, attributes={"score": True})
    result = services.contact_update(
        contact=contact, actor=api_actor, data={"attributes": {"score": 1}}
    )
    assert result.changes == {"attributes.score": [True, 1]}


def test_secure_attributes_are_refused_from_untrusted_sources(
    agent, schema, staff_actor, widget_actor, admin_actor, api_actor
):
    contact = ContactFactory(agent=agent, identity=Identity.SELF_REPORTED)
    data = {"attributes": {"stripe_customer": "cus_1"}}
    with pytest.raises(ValidationFailed) as excinfo:
        services.contact_update(contact=contact, actor=staff_actor, data=data)
    assert "Secure attribute" in excinfo.value.fields["attributes.stripe_customer"][0]

    ignored = services.contact_update(
        contact=contact, actor=widget_actor, data=data, on_forbidden="ignore"
    )
    assert ignored.ignored == {"stripe_customer": "secure attribute"}
    contact.refresh_from_db()
    assert "stripe_customer" not in contact.attributes

    for trusted in (admin_actor, api_actor, Actor.jwt(), Actor.importer("import #1")):
        services.contact_update(
            contact=contact, actor=trusted, data={"attributes": {"stripe_customer": trusted.label}}
        )
        contact.refresh_from_db()
        assert contact.attributes["stripe_customer"] == trusted.label
    hmac_actor = Actor.hmac()
    assert not hmac_actor.can_write_secure


def test_the_widget_cannot_change_a_verified_contact(agent, widget_actor):
    contact = ContactFactory(agent=agent, identity=Identity.VERIFIED, name="Real Name")
    with pytest.raises(ForbiddenError):
        services.contact_update(contact=contact, actor=widget_actor, data={"name": "Hacker"})
    with pytest.raises(ForbiddenError):
        services.contact_tags_add(contact=contact, actor=widget_actor, names=["x"])
    contact.refresh_from_db()
    assert contact.name == "Real Name"


def test_fill_blanks_only_never_overwrites(agent, widget_actor):
    AttributeFactory(agent=agent, key="city")
    contact = ContactFactory(
        agent=agent, identity=Identity.SELF_REPORTED, name="Jane", email="", attributes={}
    )
    result = services.contact_update(
        contact=contact,
        actor=widget_actor,
        data={"name": "Mallory", "email": "jane@example.com", "attributes": {"city": "Paris"}},
        fill_blanks_only=True,
    )
    assert result.contact.name == "Jane"
    assert result.contact.email == "jane@example.com"
    assert result.contact.attributes == {"city": "Paris"}


def test_identity_only_moves_up(agent, api_actor, widget_actor):
    contact = ContactFactory(agent=agent, identity=Identity.SELF_REPORTED)
    services.contact_update(contact=contact, actor=api_actor, data={}, identity=Identity.ANONYMOUS)
    contact.refresh_from_db()
    assert contact.identity == Identity.SELF_REPORTED
    with pytest.raises(ForbiddenError):
        services.contact_update(
            contact=contact, actor=widget_actor, data={}, identity=Identity.VERIFIED
        )
    services.contact_update(contact=contact, actor=api_actor, data={}, identity=Identity.VERIFIED)
    contact.refresh_from_db()
    assert contact.identity == Identity.VERIFIED
    assert contact.identity_source == "api"


def test_external_id_can_be_set_once_but_never_changed(agent, api_actor):
    contact = ContactFactory(agent=agent, external_id=None)
    services.contact_update(contact=contact, actor=api_actor, data={"external_id": "u-9"})
    contact.refresh_from_db()
    assert contact.external_id == "u-9"
    with pytest.raises(ValidationFailed, match="cannot change"):
        services.contact_update(contact=contact, actor=api_actor, data={"external_id": "u-10"})


def test_setting_an_external_id_used_by_another_contact_is_a_conflict(agent, api_actor):
    ContactFactory(agent=agent, external_id="taken")
    contact = ContactFactory(agent=agent, external_id=None, name="Before")
    with pytest.raises(ConflictError):
        services.contact_update(
            contact=contact, actor=api_actor, data={"external_id": "taken", "name": "After"}
        )
    contact.refresh_from_db()
    assert contact.external_id is None
    assert contact.name == "Before"


def test_unknown_attributes_can_be_created_with_an_inferred_type(agent, api_actor, settings):
    contact = ContactFactory(agent=agent)
    result = services.contact_update(
        contact=contact,
        actor=api_actor,
        data={"attributes": {"seats": "12", "vip": "yes", "Bad Key": "x"}},
        unknown_attributes="create",
    )
    types = dict(AttributeDefinition.objects.filter(agent=agent).values_list("key", "type"))
    assert types == {"seats": "number", "vip": "boolean"}
    assert result.contact.attributes == {"seats": 12, "vip": True}
    assert result.ignored == {"Bad Key": "not a valid attribute key"}


def test_created_attributes_stop_at_the_agent_limit(agent, api_actor, settings):
    settings.MAX_ATTRIBUTES_PER_AGENT = 2
    AttributeFactory(agent=agent, key="existing")
    contact = ContactFactory(agent=agent)
    result = services.contact_update(
        contact=contact,
        actor=api_actor,
        data={"attributes": {"one": "a", "two": "b"}},
        unknown_attributes="create",
    )
    assert AttributeDefinition.objects.filter(agent=agent).count() == 2
    assert result.ignored == {"two": "attribute limit reached"}


# --- tags and Stripe accounts -----------------------------------------------------------------


def test_tags_are_case_insensitive_per_agent(agent, other_agent, api_actor):
    contact = ContactFactory(agent=agent)
    services.contact_tags_add(contact=contact, actor=api_actor, names=["VIP", "beta"])
    services.contact_tags_add(contact=contact, actor=api_actor, names=["vip", "Trial"])
    assert Tag.objects.filter(agent=agent).count() == 3
    assert sorted(contact.tags.values_list("name", flat=True)) == ["Trial", "VIP", "beta"]
    services.contact_tags_add(
        contact=ContactFactory(agent=other_agent), actor=api_actor, names=["vip"]
    )
    assert Tag.objects.filter(agent=other_agent, name="vip").exists()

    services.contact_tags_remove(contact=contact, actor=api_actor, names=["BETA", "unknown"])
    assert sorted(contact.tags.values_list("name", flat=True)) == ["Trial", "VIP"]
    result = services.contact_tags_set(contact=contact, actor=api_actor, names=["new", "vip"])
    assert result.changes["tags"] == [["Trial", "VIP"], ["new", "VIP"]]


def test_bulk_tagging_audits_each_contact_that_gained_a_tag(agent, staff_actor):
    contacts = ContactFactory.create_batch(3, agent=agent)
    services.contact_tags_add(contact=contacts[0], actor=staff_actor, names=["vip"])
    gained = services.contacts_tags_add_bulk(
        agent=agent, actor=staff_actor, contact_ids=[c.pk for c in contacts], names=["vip"]
    )
    assert gained == 2
    assert ContactTag.objects.filter(tag__name="vip").count() == 3
    assert AuditEvent.objects.filter(changes__has_key="tags_added").count() == 2


def test_stripe_accounts_are_validated_added_updated_and_removed(agent, staff_actor):
    contact = ContactFactory(agent=agent)
    with pytest.raises(ValidationFailed) as excinfo:
        services.stripe_account_add(
            contact=contact, actor=staff_actor, data={"stripe_id": "acct_1", "stripe_email": "x"}
        )
    assert set(excinfo.value.fields) == {"stripe_id", "stripe_email"}
    account = services.stripe_account_add(
        contact=contact, actor=staff_actor, data={"stripe_id": "cus_A1", "label": "Main"}
    )
    with pytest.raises(ConflictError):
        services.stripe_account_add(
            contact=contact, actor=staff_actor, data={"stripe_id": "cus_A1"}
        )
    services.stripe_account_update(account=account, actor=staff_actor, data={"label": "Old"})
    account.refresh_from_db()
    assert account.label == "Old"
    services.stripe_account_remove(account=account, actor=staff_actor)
    assert not StripeAccount.objects.exists()
    assert (
        AuditEvent.objects.filter(contact_id=contact.pk, changes__has_key="stripe_accounts").count()
        == 3
    )


def test_stripe_accounts_in_upsert_data_replace_the_set(agent, api_actor):
    services.contact_upsert(
        agent=agent,
        actor=api_actor,
        external_id="u-1",
        data={"stripe_accounts": [{"stripe_id": "cus_A"}, {"stripe_id": "cus_B", "label": "B"}]},
    )
    result = services.contact_upsert(
        agent=agent,
        actor=api_actor,
        external_id="u-1",
        data={"stripe_accounts": [{"stripe_id": "cus_B", "label": "Renamed"}]},
    )
    accounts = list(result.contact.stripe_accounts.values_list("stripe_id", "label"))
    assert accounts == [("cus_B", "Renamed")]


# --- delete, restore -------------------------------------------------------------------------


def test_soft_delete_and_restore_are_audited(agent, staff_actor):
    contact = ContactFactory(agent=agent)
    services.contact_soft_delete(contact=contact, actor=staff_actor)
    contact.refresh_from_db()
    assert contact.deleted_at is not None
    services.contact_restore(contact=contact, actor=staff_actor)
    contact.refresh_from_db()
    assert contact.deleted_at is None
    actions = list(
        AuditEvent.objects.filter(contact_id=contact.pk)
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["deleted", "restored"]


def test_bulk_soft_delete_only_touches_this_agents_live_contacts(agent, other_agent, staff_actor):
    mine = ContactFactory.create_batch(2, agent=agent)
    foreign = ContactFactory(agent=other_agent)
    count = services.contacts_soft_delete_bulk(
        agent=agent, actor=staff_actor, contact_ids=[c.pk for c in mine] + [foreign.pk]
    )
    assert count == 2
    foreign.refresh_from_db()
    assert foreign.deleted_at is None


# --- merge ---------------------------------------------------------------------------------


def test_merge_moves_conversations_tags_stripe_accounts_and_fills_blanks(agent, staff_actor):
    AttributeFactory(agent=agent, key="plan")
    AttributeFactory(agent=agent, key="city")
    primary = ContactFactory(
        agent=agent, external_id="u-1", name="Jane", email="", attributes={"plan": "Pro"}
    )
    secondary = ContactFactory(
        agent=agent,
        external_id=None,
        name="J.",
        email="jane@example.com",
        identity=Identity.SELF_REPORTED,
        attributes={"plan": "Free", "city": "Paris"},
    )
    services.contact_tags_add(contact=primary, actor=staff_actor, names=["vip"])
    services.contact_tags_add(contact=secondary, actor=staff_actor, names=["VIP", "beta"])
    StripeAccountFactory(contact=primary, stripe_id="cus_SHARED")
    StripeAccountFactory(contact=secondary, stripe_id="cus_SHARED")
    StripeAccountFactory(contact=secondary, stripe_id="cus_OWN")
    conversation = ConversationFactory(agent=agent, contact=secondary)
    session = VisitorSession.objects.create(
        agent=agent, visitor_id="v1", contact=secondary, created_contact=True
    )

    result = services.contact_merge(primary=primary, secondary=secondary, actor=staff_actor)

    merged = result.contact
    assert not Contact.objects.filter(pk=secondary.pk).exists()
    assert merged.name == "Jane"
    assert merged.email == "jane@example.com"
    assert merged.attributes == {"plan": "Pro", "city": "Paris"}
    assert sorted(merged.tags.values_list("name", flat=True), key=str.lower) == ["beta", "vip"]
    assert sorted(merged.stripe_accounts.values_list("stripe_id", flat=True)) == [
        "cus_OWN",
        "cus_SHARED",
    ]
    conversation.refresh_from_db()
    assert conversation.contact_id == primary.pk
    assert merged.conversation_count == 1
    session.refresh_from_db()
    # The merged contact is verified and this session never signed in: it is let go.
    assert session.contact_id is None
    assert session.created_contact is False
    history = AuditEvent.objects.filter(contact_id=primary.pk)
    assert history.filter(action="merged").exists()
    assert history.filter(changes__has_key="tags").count() >= 2  # secondary's history moved too


def test_merge_refuses_two_different_external_ids(agent, staff_actor):
    primary = ContactFactory(agent=agent, external_id="u-1")
    secondary = ContactFactory(agent=agent, external_id="u-2")
    ConversationFactory(agent=agent, contact=secondary)
    with pytest.raises(ConflictError, match="cannot be merged"):
        services.contact_merge(primary=primary, secondary=secondary, actor=staff_actor)
    assert Contact.objects.filter(pk=secondary.pk).exists()
    assert Conversation.objects.get().contact_id == secondary.pk


def test_merge_takes_over_the_secondarys_external_id_and_verification(agent, staff_actor):
    primary = ContactFactory(agent=agent, external_id=None, identity=Identity.SELF_REPORTED)
    secondary = ContactFactory(agent=agent, external_id="u-7", identity=Identity.VERIFIED)
    merged = services.contact_merge(primary=primary, secondary=secondary, actor=staff_actor).contact
    assert merged.external_id == "u-7"
    assert merged.identity == Identity.VERIFIED


def test_merge_preview_describes_the_result_without_writing(agent):
    primary = ContactFactory(agent=agent, phone="")
    secondary = ContactFactory(agent=agent, phone="+14155552671")
    preview = services.contact_merge_preview(primary=primary, secondary=secondary)
    assert preview == {"phone": ["", "+14155552671"]}
    primary.refresh_from_db()
    assert primary.phone == ""


# --- ensure ------------------------------------------------------------------------------------


def test_ensure_with_a_fingerprint_is_an_idempotent_verified_contact(agent, api_actor):
    first = services.contact_ensure(
        agent=agent, actor=api_actor, data={"name": "A"}, fingerprint=42
    )
    second = services.contact_ensure(
        agent=agent, actor=api_actor, data={"name": "B"}, fingerprint="42"
    )
    assert first.created
    assert not second.created
    assert second.contact.pk == first.contact.pk
    assert second.contact.name == "A"  # existing values are kept; only blanks fill
    assert second.contact.identity == Identity.VERIFIED


def test_ensure_without_fingerprint_never_returns_a_verified_contact(agent, api_actor):
    unverified = services.contact_ensure(
        agent=agent, actor=api_actor, data={"email": "Jane@Example.com"}
    )
    again = services.contact_ensure(
        agent=agent, actor=api_actor, data={"email": "jane@example.COM"}
    )
    assert unverified.created
    assert not again.created
    assert again.contact.pk == unverified.contact.pk
    assert again.contact.identity == Identity.SELF_REPORTED

    services.contact_update(
        contact=again.contact, actor=api_actor, data={}, identity=Identity.VERIFIED
    )
    after_verification = services.contact_ensure(
        agent=agent, actor=api_actor, data={"email": "jane@example.com"}
    )
    assert after_verification.created
    assert after_verification.contact.pk != unverified.contact.pk
    assert after_verification.contact.identity != Identity.VERIFIED


def test_ensure_needs_something_to_key_on(agent, api_actor):
    with pytest.raises(ValidationFailed) as excinfo:
        services.contact_ensure(agent=agent, actor=api_actor, data={})
    assert "fingerprint" in excinfo.value.fields


# --- erase and export ----------------------------------------------------------------------------


def test_erase_anonymizes_transcripts_and_keeps_only_a_pii_free_record(agent, admin_actor):
    contact = ContactFactory(
        agent=agent, name="Jane Doe", email="jane@example.com", phone="+14155552671"
    )
    conversation = ConversationFactory(agent=agent, contact=contact, subject="Jane's refund")
    conversation.messages.create(role="visitor", body="I'm Jane Doe, mail jane@example.com")
    conversation.messages.create(role="bot", body="Thanks Jane, we'll call (415) 555-2671")
    contact_id = contact.pk

    services.contact_erase(contact=contact, actor=admin_actor)

    assert not Contact.objects.filter(pk=contact_id).exists()
    conversation.refresh_from_db()
    assert conversation.contact is None
    assert conversation.contact_erased
    bodies = " ".join(conversation.messages.values_list("body", flat=True)) + conversation.subject
    for pii in ("Jane", "Doe", "jane@example.com", "555-2671"):
        assert pii not in bodies
    events = list(AuditEvent.objects.filter(contact_id=contact_id))
    assert [e.action for e in events] == ["erased"]
    assert "Jane" not in str(events[0].changes)


def test_export_data_holds_everything_about_the_contact(agent, staff_actor):
    AttributeFactory(agent=agent, key="plan", label="Plan")
    contact = ContactFactory(agent=agent, attributes={"plan": "Pro"})
    services.contact_tags_add(contact=contact, actor=staff_actor, names=["vip"])
    conversation = ConversationFactory(agent=agent, contact=contact)
    conversation.messages.create(role="visitor", body="hello there")
    data = contact_export_data(contact=contact)
    assert data["contact"]["id"] == str(contact.pk)
    assert data["contact"]["tags"] == ["vip"]
    assert data["attribute_labels"] == {"plan": "Plan"}
    assert data["conversations"][0]["messages"][0]["body"] == "hello there"
    assert data["history"][0]["changes"]["tags"] == [[], ["vip"]]
    # One timestamp format throughout: UTC with a Z.
    assert data["exported_at"].endswith("Z")
    assert data["conversations"][0]["created_at"].endswith("Z")
    assert data["history"][0]["at"].endswith("Z")


def test_another_agents_contact_is_invisible_to_selectors(agent, other_agent):
    from contacts.selectors import contact_get, contact_queryset

    foreign = ContactFactory(agent=other_agent)
    with pytest.raises(Contact.DoesNotExist):
        contact_get(agent=agent, contact_id=foreign.pk)
    with pytest.raises(Contact.DoesNotExist):
        contact_get(agent=agent, contact_id="not-a-uuid")
    assert foreign not in contact_queryset(agent=agent)
