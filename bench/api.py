"""The API contact list: page 1 and a deep page by cursor, beside OFFSET at the same depth.

The deep page is page 10,000 up to a million contacts and one page per hundred contacts
beyond (page 100,000 at ten million): as deep into the list as a sync client walks."""

from __future__ import annotations

from urllib.parse import urlencode

from attributes.selectors import attribute_definition_map
from bench.context import BenchContext
from bench.harness import Row, measure, ms
from contacts.query.filterset import ContactFilterSet
from contacts.query.keyset import encode_cursor, order_contacts
from contacts.selectors import contact_queryset

DEEP_PAGE = 10_000
PAGES_PER_CONTACT = 1 / 100
PAGE_SIZE = 50
ORDERINGS = ("-created_at", "name", "-attr.mrr")


def deep_page_for(contacts: int) -> int:
    """The deep page measured in an agent of `contacts` (at least page 2 of a small one)."""
    deep = max(DEEP_PAGE, int(contacts * PAGES_PER_CONTACT))
    return max(min(deep, contacts // PAGE_SIZE - 1), 2)


def run(ctx: BenchContext, *, repeat: int, log) -> list[Row]:
    client = ctx.api_client()
    definitions = attribute_definition_map(agent=ctx.agent)
    rows = []
    for ordering in ORDERINGS:
        filters = ContactFilterSet(
            {"ordering": ordering},
            agent=ctx.agent,
            definitions=definitions,
            queryset=contact_queryset(agent=ctx.agent),
        ).validated()
        spec = filters.sort()
        qs = order_contacts(filters.qs, spec)
        deep_page = deep_page_for(ctx.contacts)
        offset = (deep_page - 1) * PAGE_SIZE
        # The cursor the API hands out after the page before the deep one: built from the
        # row just before it with the list's own encoder (no need for thousands of calls).
        before = qs.annotate(_sort_value=spec.expression)[offset - 1 : offset].get()
        cursor = encode_cursor(spec, before._sort_value, before.pk, "next")
        base = {"ordering": ordering, "page_size": PAGE_SIZE}
        first_url = "/api/v1/contacts/?" + urlencode(base)
        deep_url = "/api/v1/contacts/?" + urlencode({**base, "cursor": cursor})
        deep_ids = [c["id"] for c in client.get(deep_url).json()["results"]]
        offset_ids = [str(c.pk) for c in qs[offset : offset + PAGE_SIZE]]
        if deep_ids != offset_ids:
            raise RuntimeError(f"page {deep_page} by cursor differs from OFFSET ({ordering})")
        first = measure(lambda url=first_url: client.get(url), repeat=repeat)
        deep = measure(lambda url=deep_url: client.get(url), repeat=repeat)
        by_offset = measure(
            lambda qs=qs, offset=offset: list(qs[offset : offset + PAGE_SIZE]),
            # OFFSET walks every row before the page: tens of seconds at page 100,000.
            repeat=max(repeat // 4, 3) if deep_page <= DEEP_PAGE else 3,
            warmup=1 if deep_page <= DEEP_PAGE else 0,
        )
        flat = deep.p50 <= max(first.p50 * 1.5, first.p50 + 10)
        rows.append(
            Row(
                work=f"API list page {deep_page:,} by cursor (ordering={ordering})",
                target="same time as page 1",
                measured=(
                    f"page {deep_page:,}: p50 {ms(deep.p50)} / p95 {ms(deep.p95)}; "
                    f"page 1: p50 {ms(first.p50)} / p95 {ms(first.p95)}"
                ),
                baseline=f"OFFSET {offset:,}: p50 {ms(by_offset.p50)} (query alone)",
                ratio=f"{by_offset.p50 / deep.p50:,.0f}× faster than OFFSET",
                ok=flat,
            )
        )
        log(f"  {rows[-1].work}: {rows[-1].measured} | {rows[-1].baseline}")
    return rows
