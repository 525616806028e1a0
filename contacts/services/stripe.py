"""Stripe accounts linked to a contact (label, cus_… id, email)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contacts.cleaning import (
    clean_stripe_account,
)
from contacts.models import (
    Contact,
    StripeAccount,
)
from contacts.services.audit import related_write
from core.actors import Actor
from core.errors import (
    ConflictError,
)


def apply_stripe_accounts(
    contact: Contact, accounts: list[dict[str, str]], *, keep_others: bool = False
) -> list | None:
    """Replace the contact's Stripe links with `accounts` (matched by stripe_id); with
    keep_others, add and update only."""
    current = {a.stripe_id: a for a in contact.stripe_accounts.all()}
    before = [stripe_dict(a) for a in current.values()]
    wanted = {a["stripe_id"]: a for a in accounts}
    if not keep_others:
        StripeAccount.objects.filter(contact=contact).exclude(stripe_id__in=list(wanted)).delete()
    for stripe_id, data in wanted.items():
        account = current.get(stripe_id)
        if account is None:
            StripeAccount.objects.create(contact=contact, **data)
        elif keep_others:
            # Merging (imports): a blank label or email keeps the saved one.
            label = data["label"] or account.label
            email = data["stripe_email"] or account.stripe_email
            if (account.label, account.stripe_email) != (label, email):
                account.label, account.stripe_email = label, email
                account.save(update_fields=["label", "stripe_email"])
        elif (account.label, account.stripe_email) != (data["label"], data["stripe_email"]):
            account.label, account.stripe_email = data["label"], data["stripe_email"]
            account.save(update_fields=["label", "stripe_email"])
    after = [stripe_dict(a) for a in StripeAccount.objects.filter(contact=contact)]
    return None if before == after else [before, after]


def stripe_dict(account: StripeAccount) -> dict[str, str]:
    return {
        "label": account.label,
        "stripe_id": account.stripe_id,
        "stripe_email": account.stripe_email,
    }


def stripe_account_add(*, contact: Contact, actor: Actor, data: Mapping[str, Any]) -> StripeAccount:
    """Link a Stripe customer (cus_…) to the contact."""
    account_data = clean_stripe_account(data)
    created: list[StripeAccount] = []

    def apply(locked: Contact):
        if StripeAccount.objects.filter(
            contact=locked, stripe_id=account_data["stripe_id"]
        ).exists():
            raise ConflictError(
                f"{account_data['stripe_id']} is already linked to this contact.",
                fields={"stripe_id": ["Already linked to this contact."]},
            )
        created.append(StripeAccount.objects.create(contact=locked, **account_data))
        return [None, account_data]

    related_write(contact, actor, "stripe_accounts", apply)
    return created[0]


def stripe_account_update(
    *, account: StripeAccount, actor: Actor, data: Mapping[str, Any]
) -> StripeAccount:
    """Change a Stripe link's label, id or email."""
    merged = {**stripe_dict(account), **dict(data)}
    account_data = clean_stripe_account(merged)

    def apply(locked: Contact):
        before = stripe_dict(account)
        if before == account_data:
            return None
        clash = (
            StripeAccount.objects.filter(contact=locked, stripe_id=account_data["stripe_id"])
            .exclude(pk=account.pk)
            .exists()
        )
        if clash:
            raise ConflictError(
                f"{account_data['stripe_id']} is already linked to this contact.",
                fields={"stripe_id": ["Already linked to this contact."]},
            )
        for name, value in account_data.items():
            setattr(account, name, value)
        account.save()
        return [before, account_data]

    related_write(account.contact, actor, "stripe_accounts", apply)
    return account


def stripe_account_remove(*, account: StripeAccount, actor: Actor) -> None:
    """Unlink a Stripe customer from the contact."""

    def apply(locked: Contact):
        before = stripe_dict(account)
        account.delete()
        return [before, None]

    related_write(account.contact, actor, "stripe_accounts", apply)
