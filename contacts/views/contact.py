"""The contact page and what changes one contact: edit, tags, Stripe accounts, delete,
restore, erase, download data, merge (and "Merge with…", which finds the other contact).
Notes are written through `contacts.views.notes`.

Every view re-checks the workspace and role (`contact_for`) and writes through the
services; htmx requests get back the partial they replace, plain forms a redirect.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from attributes.selectors import attribute_definitions
from contacts import display, normalize
from contacts.forms import ContactForm, EraseForm, StripeAccountForm
from contacts.models import ADOPTABLE_SOURCES, Contact, StripeAccount
from contacts.panels import panels_for
from contacts.query.filterset import MAX_SEARCH
from contacts.selectors import (
    contact_audit_events,
    contact_export_data,
    contact_get,
    contact_merged_into,
    contact_note_count,
    contact_possible_duplicates,
    contacts_with_email,
    merge_candidates,
    tag_suggestions,
)
from contacts.services import (
    ContactWrite,
    contact_create,
    contact_erase,
    contact_merge,
    contact_merge_preview,
    contact_restore,
    contact_soft_delete,
    contact_tags_add,
    contact_tags_remove,
    contact_update,
    contacts_mergeable,
    stripe_account_add,
    stripe_account_remove,
    stripe_account_update,
)
from contacts.table import display_phone, initials
from contacts.views.common import error_text, flash_error, list_url, stash_notice
from contacts.views.note_card import note_history, notes_card
from core.errors import ConflictError, DomainError
from core.htmx import wants_fragment
from workspaces.access import get_agent_access, staff_actor
from workspaces.selectors import AgentAccess

HISTORY_LIMIT = 100


def contact_for(
    request: HttpRequest, agent_public_id: str, contact_id: Any, *, admin: bool = False
) -> tuple[AgentAccess, Contact]:
    """The contact if it belongs to an agent the user may see (404 otherwise)."""
    access = get_agent_access(request, agent_public_id, admin=admin)
    try:
        contact = contact_get(agent=access.agent, contact_id=contact_id)
    except Contact.DoesNotExist:
        raise Http404("No such contact.") from None
    return access, contact


def detail_url(agent, contact: Contact) -> str:
    return reverse(
        "contacts:detail", kwargs={"agent_public_id": agent.public_id, "contact_id": contact.pk}
    )


def _stripe_rows(access: AgentAccess, contact: Contact, failed: dict[int, StripeAccountForm]):
    rows = []
    for account in contact.stripe_accounts.all():
        form = failed.get(account.pk) or StripeAccountForm(
            initial={
                "label": account.label,
                "stripe_id": account.stripe_id,
                "stripe_email": account.stripe_email,
            },
            auto_id=f"stripe-{account.pk}-%s",
        )
        url = reverse(
            "contacts:stripe_change",
            kwargs={
                "agent_public_id": access.agent.public_id,
                "contact_id": contact.pk,
                "account_id": account.pk,
            },
        )
        rows.append({"account": account, "form": form, "url": url, "open": account.pk in failed})
    return rows


def _detail_context(
    access: AgentAccess,
    contact: Contact,
    *,
    stripe_failed: dict[int, StripeAccountForm] | None = None,
    notes_cursor: str | None = None,
    notes_failed: dict[int, tuple[str, str]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    definitions = attribute_definitions(agent=access.agent, include_archived=True)
    by_key = {d.key: d for d in definitions}
    events = contact_audit_events(contact=contact, limit=HISTORY_LIMIT)
    notes = _notes_card(access, contact, cursor=notes_cursor, failed=notes_failed)
    context = {
        "agent": access.agent,
        "is_admin": access.is_admin,
        "contact": contact,
        "initials": initials(contact),
        "phone": display_phone(contact.phone),
        "identity_source": display.identity_source_label(contact),
        "attributes": display.attribute_rows(contact, definitions),
        "tags": list(contact.tags.all()),
        "stripe_rows": _stripe_rows(access, contact, stripe_failed or {}),
        "stripe_form": StripeAccountForm(auto_id="stripe-new-%s"),
        "history": note_history(events, display.history(events, by_key)),
        "list_url": list_url(access.agent),
        "merge_with_url": (
            ""
            if contact.is_deleted
            else reverse("contacts:merge_with", kwargs=_kwargs(access.agent, contact))
        ),
        **notes,
    }
    context.update(extra)
    return context


def _kwargs(agent, contact: Contact) -> dict[str, Any]:
    return {"agent_public_id": agent.public_id, "contact_id": contact.pk}


def _notes_card(access: AgentAccess, contact: Contact, **kwargs: Any) -> dict[str, Any]:
    return notes_card(
        agent=access.agent,
        contact=contact,
        user_id=access.membership.user_id,
        is_admin=access.is_admin,
        **kwargs,
    )


def _duplicates(access: AgentAccess, contact: Contact) -> list[dict[str, Any]]:
    if contact.is_deleted:
        return []
    rows = []
    for other in contact_possible_duplicates(contact=contact):
        same_email = bool(contact.email) and other.email.casefold() == contact.email.casefold()
        rows.append(
            {
                "contact": other,
                "url": detail_url(access.agent, other),
                "reason": "email" if same_email else "phone",
                "merge_url": (
                    _merge_url(access.agent, contact, other)
                    if contacts_mergeable(contact, other)
                    else ""
                ),
            }
        )
    return rows


def _unadopted_count(contact: Contact, duplicates: list[dict[str, Any]]) -> int:
    """How many same-email contacts a signed identify could not choose between (SPEC 6
    adoption needs exactly one): shown so staff merge the right one."""
    if contact.identity_source not in ("jwt", "hmac"):
        return 0
    count = sum(
        1
        for dup in duplicates
        if dup["reason"] == "email"
        and dup["contact"].external_id is None
        and dup["contact"].identity_source in ADOPTABLE_SOURCES
    )
    return count if count > 1 else 0


@require_GET
@login_required
@vary_on_headers("HX-Request")
def contact_detail(request: HttpRequest, agent_public_id: str, contact_id: Any) -> HttpResponse:
    access = get_agent_access(request, agent_public_id)
    try:
        contact = contact_get(agent=access.agent, contact_id=contact_id)
    except Contact.DoesNotExist:
        # An old link to a contact merged into another leads to the one it lives on in.
        survivor = contact_merged_into(agent=access.agent, contact_id=contact_id)
        if survivor is None:
            raise Http404("No such contact.") from None
        messages.info(request, "That contact was merged into this one; its page is now here.")
        return redirect(detail_url(access.agent, survivor))
    cursor = request.GET.get("notes") or None
    if wants_fragment(request, "contact-notes"):
        # Older notes (or back to the newest) swap the Notes card alone.
        context = {"agent": access.agent, "contact": contact}
        context.update(_notes_card(access, contact, cursor=cursor))
        return render(request, "contacts/detail.html#contact-notes", context)
    return detail_page(request, access, contact, notes_cursor=cursor)


def detail_page(
    request: HttpRequest, access: AgentAccess, contact: Contact, status: int = 200, **extra: Any
) -> HttpResponse:
    """The whole contact page (also a refused form's answer when JavaScript is off)."""
    duplicates = _duplicates(access, contact)
    context = _detail_context(
        access,
        contact,
        panels=panels_for(access.agent, contact),
        duplicates=duplicates,
        unadopted_count=_unadopted_count(contact, duplicates),
        **extra,
    )
    return render(request, "contacts/detail.html", context, status=status)


# --- Tags -------------------------------------------------------------------------------------


def with_history(
    request: HttpRequest,
    access: AgentAccess,
    contact: Contact,
    partial: str,
    status: int = 200,
    **extra: Any,
) -> HttpResponse:
    """The changed card plus the audit history, swapped out of band (it gained an entry)."""
    context = _detail_context(access, contact, card=f"contacts/detail.html#{partial}", **extra)
    return render(request, "contacts/_card_update.html", context, status=status)


@require_POST
@login_required
def contact_tags(request: HttpRequest, agent_public_id: str, contact_id: Any) -> HttpResponse:
    """Add a tag (typed or picked from the suggestions) or remove one."""
    access, contact = contact_for(request, agent_public_id, contact_id)
    actor = staff_actor(request, access)
    remove = request.POST.get("remove")
    name = (request.POST.get("pick") or request.POST.get("tag") or "").strip()
    error = ""
    try:
        if remove:
            contact_tags_remove(contact=contact, actor=actor, names=[remove])
        elif not name:
            error = "Type a tag name."
        else:
            contact_tags_add(contact=contact, actor=actor, names=[name])
    except DomainError as exc:
        error = error_text(exc)
    contact = contact_get(agent=access.agent, contact_id=contact.pk)
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect(detail_url(access.agent, contact))
    extra = {"tag_error": error, "tag_value": name if error else "", "refocus": True}
    return with_history(
        request, access, contact, "contact-tags", status=422 if error else 200, **extra
    )


@require_GET
@login_required
def contact_tag_suggestions(
    request: HttpRequest, agent_public_id: str, contact_id: Any
) -> HttpResponse:
    """Tags of the agent matching what is typed, minus those the contact has."""
    access, contact = contact_for(request, agent_public_id, contact_id)
    typed = request.GET.get("tag", "").strip()[:64]
    held = {t.name.casefold() for t in contact.tags.all()}
    names = [
        n
        for n in tag_suggestions(agent=access.agent, prefix=typed, limit=12)
        if n.casefold() not in held
    ]
    exact = any(n.casefold() == typed.casefold() for n in names) or typed.casefold() in held
    context = {
        "agent": access.agent,
        "contact": contact,
        "suggestions": names[:8],
        "typed": typed,
        "offer_new": bool(typed) and not exact,
    }
    return render(request, "contacts/detail.html#tag-suggestions", context)


# --- Stripe accounts --------------------------------------------------------------------------


def _stripe_account(contact: Contact, account_id: int) -> StripeAccount:
    for account in contact.stripe_accounts.all():
        if account.pk == account_id:
            return account
    raise Http404("No such Stripe account.")


def _stripe_response(
    request: HttpRequest,
    access: AgentAccess,
    contact: Contact,
    *,
    form: StripeAccountForm | None = None,
    account_id: int | None = None,
) -> HttpResponse:
    failed = form is not None and bool(form.errors)
    if not request.htmx:
        if failed:
            for errors in form.errors.values():
                for error in errors:
                    messages.error(request, error)
        return redirect(detail_url(access.agent, contact))
    contact = contact_get(agent=access.agent, contact_id=contact.pk)
    extra: dict[str, Any] = {}
    if failed and account_id is None:
        extra.update(stripe_form=form, stripe_adding=True)
    elif failed:
        extra["stripe_failed"] = {account_id: form}
    return with_history(
        request, access, contact, "contact-stripe", status=422 if failed else 200, **extra
    )


@require_POST
@login_required
def stripe_add(request: HttpRequest, agent_public_id: str, contact_id: Any) -> HttpResponse:
    access, contact = contact_for(request, agent_public_id, contact_id)
    form = StripeAccountForm(request.POST, auto_id="stripe-new-%s")
    if form.is_valid():
        try:
            stripe_account_add(
                contact=contact, actor=staff_actor(request, access), data=form.cleaned_data
            )
        except DomainError as exc:
            form.add_errors(exc)
    return _stripe_response(request, access, contact, form=form)


@require_POST
@login_required
def stripe_change(
    request: HttpRequest, agent_public_id: str, contact_id: Any, account_id: int
) -> HttpResponse:
    """Save a Stripe link's edits, or remove it (`remove` button)."""
    access, contact = contact_for(request, agent_public_id, contact_id)
    account = _stripe_account(contact, account_id)
    actor = staff_actor(request, access)
    if request.POST.get("remove"):
        stripe_account_remove(account=account, actor=actor)
        return _stripe_response(request, access, contact)
    form = StripeAccountForm(request.POST, auto_id=f"stripe-{account.pk}-%s")
    if form.is_valid():
        try:
            stripe_account_update(account=account, actor=actor, data=form.cleaned_data)
        except DomainError as exc:
            form.add_errors(exc)
    return _stripe_response(request, access, contact, form=form, account_id=account.pk)


# --- Add and edit ------------------------------------------------------------------------------


def _email_owner(agent, form: ContactForm, contact: Contact | None) -> Contact | None:
    """Another live contact that already has the email being saved, if any."""
    raw = form.cleaned_data.get("email")
    if not raw or (contact is not None and "email" not in form.changed_data):
        return None
    try:
        email = normalize.normalize_email(raw)
    except normalize.FieldError:
        return None  # the service reports the bad address
    if not email:
        return None
    return contacts_with_email(agent=agent, email=email, exclude=contact).first()


def _merge_url(agent, primary: Contact, secondary: Contact) -> str:
    base = reverse("contacts:merge", kwargs={"agent_public_id": agent.public_id})
    return f"{base}?primary={primary.pk}&secondary={secondary.pk}"


@require_http_methods(["GET", "POST"])
@login_required
def contact_new(request: HttpRequest, agent_public_id: str) -> HttpResponse:
    return _contact_form(request, get_agent_access(request, agent_public_id), None)


@require_http_methods(["GET", "POST"])
@login_required
def contact_edit(request: HttpRequest, agent_public_id: str, contact_id: Any) -> HttpResponse:
    access, contact = contact_for(request, agent_public_id, contact_id)
    return _contact_form(request, access, contact)


def _contact_form(request: HttpRequest, access: AgentAccess, contact: Contact | None):
    """A new contact (`contact` None) or an edit, with a typed input per attribute. An email
    another contact already has points to that contact (and, on an edit, offers a merge)
    instead of saving a second record of one person."""
    actor = staff_actor(request, access)
    form = ContactForm(
        request.POST or None,
        definitions=attribute_definitions(agent=access.agent),
        contact=contact,
        can_write_secure=actor.can_write_secure,
    )
    status, owner = 200, None
    if request.method == "POST":
        status = 422
        if form.is_valid():
            owner = _email_owner(access.agent, form, contact)
            if owner is not None:
                form.add_error("email", f"{owner.display_name} already has this email.")
                status = 409
            else:
                try:
                    written = (
                        contact_create(agent=access.agent, actor=actor, data=form.service_data())
                        if contact is None
                        else contact_update(contact=contact, actor=actor, data=form.service_data())
                    )
                except DomainError as exc:
                    form.add_errors(exc)
                else:
                    messages.success(request, _saved_text(written, new=contact is None))
                    return redirect(detail_url(access.agent, written.contact))
    context = {
        "agent": access.agent,
        "form": form,
        "contact": contact,
        "owner": owner,
        "owner_url": detail_url(access.agent, owner) if owner else "",
        # Offered only when the merge can happen; two external ids are two people.
        "mergeable": bool(owner and contact and contacts_mergeable(contact, owner)),
        "merge_url": _merge_url(access.agent, contact, owner) if owner and contact else "",
        "merge_other_way_url": (
            _merge_url(access.agent, owner, contact) if owner and contact else ""
        ),
        "list_url": list_url(access.agent),
    }
    return render(request, "contacts/edit.html", context, status=status)


def _saved_text(written: ContactWrite, *, new: bool) -> str:
    if new:
        return f"{written.contact.display_name} was added."
    changed = len(written.changes)
    return (
        f"Saved {changed} change{'s' if changed != 1 else ''}." if changed else "Nothing changed."
    )


# --- Delete, restore, erase, download -------------------------------------------------------------


@require_POST
@login_required
def contact_delete(request: HttpRequest, agent_public_id: str, contact_id: Any) -> HttpResponse:
    """Soft delete, then back to the table with an Undo button."""
    access, contact = contact_for(request, agent_public_id, contact_id)
    try:
        contact_soft_delete(contact=contact, actor=staff_actor(request, access))
    except DomainError as exc:
        flash_error(request, exc)
        return redirect(detail_url(access.agent, contact))
    stash_notice(
        request, access.agent, f"{contact.display_name} was deleted.", undo_ids=[str(contact.pk)]
    )
    return redirect(list_url(access.agent))


@require_POST
@login_required
def contact_restore_view(
    request: HttpRequest, agent_public_id: str, contact_id: Any
) -> HttpResponse:
    access, contact = contact_for(request, agent_public_id, contact_id)
    contact_restore(contact=contact, actor=staff_actor(request, access))
    messages.success(request, f"{contact.display_name} was restored.")
    return redirect(detail_url(access.agent, contact))


def erase_phrase(contact: Contact) -> str:
    """What an admin types to confirm an erasure: the email, else the name, else the id."""
    return contact.email or contact.name or contact.phone or contact.external_id or str(contact.pk)


@require_http_methods(["GET", "POST"])
@login_required
def contact_erase_view(request: HttpRequest, agent_public_id: str, contact_id: Any) -> HttpResponse:
    """GDPR erasure (admins): typed confirmation, then the contact is gone for good."""
    access, contact = contact_for(request, agent_public_id, contact_id, admin=True)
    expected = erase_phrase(contact)
    form = EraseForm(request.POST or None, expected=expected)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            conversations = contact.conversation_count
            contact_erase(contact=contact, actor=staff_actor(request, access))
            messages.success(
                request,
                "The contact was erased"
                + (f" and {conversations} conversation(s) anonymized." if conversations else "."),
            )
            return redirect(list_url(access.agent))
        status = 422
    context = {
        "agent": access.agent,
        "contact": contact,
        "form": form,
        "expected": expected,
        "conversation_count": contact.conversation_count,
        "detail_url": detail_url(access.agent, contact),
    }
    return render(request, "contacts/erase.html", context, status=status)


@require_GET
@login_required
def contact_data(request: HttpRequest, agent_public_id: str, contact_id: Any) -> HttpResponse:
    """Everything held about the contact as a JSON download (access requests)."""
    _access, contact = contact_for(request, agent_public_id, contact_id)
    payload = json.dumps(contact_export_data(contact=contact), indent=2, cls=DjangoJSONEncoder)
    response = HttpResponse(payload, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="contact-{contact.pk}.json"'
    response["Cache-Control"] = "no-store"
    return response


# --- Merge ----------------------------------------------------------------------------------------


def _merge_pair(request: HttpRequest, access: AgentAccess) -> tuple[Contact, Contact]:
    source = request.POST if request.method == "POST" else request.GET
    try:
        primary = contact_get(agent=access.agent, contact_id=source.get("primary"))
        secondary = contact_get(agent=access.agent, contact_id=source.get("secondary"))
    except Contact.DoesNotExist:
        raise Http404("No such contact.") from None
    return primary, secondary


@require_http_methods(["GET", "POST"])
@login_required
def contact_merge_view(request: HttpRequest, agent_public_id: str) -> HttpResponse:
    """Preview what merging `secondary` into `primary` gives; POST does it."""
    access = get_agent_access(request, agent_public_id)
    primary, secondary = _merge_pair(request, access)
    error, preview = "", {}
    try:
        if primary.is_deleted:
            raise ConflictError("The contact to keep is deleted; restore it before merging.")
        preview = contact_merge_preview(primary=primary, secondary=secondary)
    except DomainError as exc:
        error = exc.message
    if request.method == "POST" and not error:
        try:
            written = contact_merge(
                primary=primary, secondary=secondary, actor=staff_actor(request, access)
            )
        except DomainError as exc:
            error = exc.message
        else:
            messages.success(
                request, f"Merged {secondary.display_name} into {written.contact.display_name}."
            )
            return redirect(detail_url(access.agent, written.contact))
    definitions = {
        d.key: d for d in attribute_definitions(agent=access.agent, include_archived=True)
    }
    primary_tags = {t.name.casefold() for t in primary.tags.all()}
    primary_stripe = {a.stripe_id for a in primary.stripe_accounts.all()}
    context = {
        "agent": access.agent,
        "primary": primary,
        "secondary": secondary,
        "error": error,
        "lines": display.merge_lines(primary, secondary, preview, definitions) if not error else [],
        "tags_moving": [
            t.name for t in secondary.tags.all() if t.name.casefold() not in primary_tags
        ],
        "stripe_moving": [
            a.stripe_id
            for a in secondary.stripe_accounts.all()
            if a.stripe_id not in primary_stripe
        ],
        "notes_moving": 0 if error else contact_note_count(contact=secondary),
        "swap_url": _merge_url(access.agent, secondary, primary),
        "merge_with_url": reverse("contacts:merge_with", kwargs=_kwargs(access.agent, primary)),
        "primary_url": detail_url(access.agent, primary),
        "secondary_url": detail_url(access.agent, secondary),
    }
    return render(
        request,
        "contacts/merge.html",
        context,
        status=409 if error and request.method == "POST" else 200,
    )


MERGE_CANDIDATES = 10


@require_GET
@login_required
@vary_on_headers("HX-Request")
def contact_merge_with(request: HttpRequest, agent_public_id: str, contact_id: Any) -> HttpResponse:
    """ "Merge with…": find the other record of this person with the table's search, then
    review the merge (this contact kept; the preview can swap). With htmx the search opens
    inside the contact page and its results refresh as you type."""
    access, contact = contact_for(request, agent_public_id, contact_id)
    q = " ".join(request.GET.get("q", "").split())[:MAX_SEARCH]
    refused = "This contact is deleted; restore it before merging." if contact.is_deleted else ""
    found = (
        []
        if refused
        else merge_candidates(agent=access.agent, contact=contact, q=q, limit=MERGE_CANDIDATES)
    )
    suggested = not q and not refused
    if suggested:
        found = contact_possible_duplicates(contact=contact)
    rows = []
    for other in found:
        try:
            contact_merge_preview(primary=contact, secondary=other)
        except DomainError as exc:
            refusal = exc.message
        else:
            refusal = ""
        rows.append(
            {
                "contact": other,
                "url": detail_url(access.agent, other),
                "merge_url": "" if refusal else _merge_url(access.agent, contact, other),
                "refusal": refusal,
            }
        )
    context = {
        "agent": access.agent,
        "contact": contact,
        "q": q,
        "rows": rows,
        "suggested": suggested,
        "more": not suggested and len(rows) >= MERGE_CANDIDATES,
        "refused": refused,
        "detail_url": detail_url(access.agent, contact),
        "merge_with_url": request.path,
        "panel": wants_fragment(request, "merge-with"),
    }
    template = "contacts/merge_with.html"
    if wants_fragment(request, "merge-candidates"):
        template += "#merge-candidates"
    elif context["panel"]:
        template += "#merge-search"
    return render(request, template, context)
