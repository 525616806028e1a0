"""The transfers app's hand-written SQL: the PostgreSQL import fast path (COPY into a
staging table, then a few set-based statements per batch; see imports/copy_writer.py) and
the tag statements of bulk actions (bulk/actions.py).
Table names come from the models; each statement is exercised by the import tests, which
run every file through both writers on PostgreSQL."""

from __future__ import annotations

from contacts.models import AuditEvent, Contact, ContactTag, StripeAccount, Tag

CONTACT = Contact._meta.db_table
CONTACT_TAG = ContactTag._meta.db_table
TAG = Tag._meta.db_table
STRIPE = StripeAccount._meta.db_table
AUDIT = AuditEvent._meta.db_table

STAGE = "rapport_import_stage"
CORE = ("name", "email", "phone", "avatar_url", "company")

CREATE_STAGE = f"""
CREATE TEMP TABLE IF NOT EXISTS {STAGE} (
    pos integer PRIMARY KEY,
    given_id uuid,
    external_id text,
    name text, email text, phone text, avatar_url text, company text,
    attributes jsonb,
    tags text[],
    stripe jsonb,
    new_id uuid NOT NULL,
    contact_id uuid,
    matched text
) ON COMMIT DELETE ROWS
"""
COPY_STAGE = (
    f"COPY {STAGE} (pos, given_id, external_id, name, email, phone, avatar_url, company, "
    "attributes, tags, stripe, new_id) FROM STDIN"
)

# Rows whose Rapport id would change the contact's external id (never allowed), or give it
# one another contact already has.
ID_CONFLICTS = f"""
SELECT s.pos, c.external_id
FROM {STAGE} s JOIN {CONTACT} c ON c.id = s.contact_id
WHERE s.matched = 'id' AND s.external_id IS NOT NULL
  AND c.external_id IS DISTINCT FROM s.external_id
  AND (c.external_id IS NOT NULL OR EXISTS (
        SELECT 1 FROM {CONTACT} o
        WHERE o.agent_id = %(agent)s AND o.external_id = s.external_id))
"""

MATCH_ID = f"""
UPDATE {STAGE} s SET contact_id = c.id, matched = 'id'
FROM {CONTACT} c
WHERE s.given_id IS NOT NULL AND c.id = s.given_id AND c.agent_id = %(agent)s
"""
MATCH_EXTERNAL_ID = f"""
UPDATE {STAGE} s SET contact_id = c.id, matched = 'ext'
FROM {CONTACT} c
WHERE s.contact_id IS NULL AND s.external_id IS NOT NULL
  AND c.agent_id = %(agent)s AND c.external_id = s.external_id
"""
# Several live contacts with the row's email: the row creates a new one rather than guess
# (the services do the same); no contact with it: the phone is tried next.
MATCH_EMAIL = f"""
UPDATE {STAGE} s
SET contact_id = CASE WHEN m.n = 1 THEN m.id END,
    matched = CASE WHEN m.n = 1 THEN 'email' ELSE 'ambiguous' END
FROM (
    SELECT lower(c.email) AS lemail, count(*) AS n, (array_agg(c.id ORDER BY c.id))[1] AS id
    FROM {CONTACT} c
    WHERE c.agent_id = %(agent)s AND c.deleted_at IS NULL
      AND lower(c.email) IN (
        SELECT lower(email) FROM {STAGE}
        WHERE contact_id IS NULL AND matched IS NULL AND external_id IS NULL
          AND email IS NOT NULL)
    GROUP BY 1
) m
WHERE s.contact_id IS NULL AND s.matched IS NULL AND s.external_id IS NULL
  AND lower(s.email) = m.lemail
"""
MATCH_PHONE = f"""
UPDATE {STAGE} s
SET contact_id = CASE WHEN m.n = 1 THEN m.id END,
    matched = CASE WHEN m.n = 1 THEN 'phone' ELSE 'ambiguous' END
FROM (
    SELECT c.phone, count(*) AS n, (array_agg(c.id ORDER BY c.id))[1] AS id
    FROM {CONTACT} c
    WHERE c.agent_id = %(agent)s AND c.deleted_at IS NULL
      AND c.phone IN (
        SELECT phone FROM {STAGE}
        WHERE contact_id IS NULL AND matched IS NULL AND external_id IS NULL
          AND phone IS NOT NULL)
    GROUP BY 1
) m
WHERE s.contact_id IS NULL AND s.matched IS NULL AND s.external_id IS NULL
  AND s.phone = m.phone
"""

# New contacts: verified (an import is a trusted channel), keyed by the id made in Python so
# that each inserted row maps back to its file row. A concurrent writer that inserted the
# same external id first makes ON CONFLICT skip the row; it is then matched and updated.
INSERT_NEW = f"""
WITH ins AS (
    INSERT INTO {CONTACT} (
        id, agent_id, external_id, fingerprint, name, email, phone, avatar_url, company,
        attributes, identity, identity_source, verified_at, first_seen_at, last_seen_at,
        conversation_count, created_at, updated_at, deleted_at)
    SELECT s.new_id, %(agent)s, s.external_id, NULL, coalesce(s.name, ''),
        coalesce(s.email, ''), coalesce(s.phone, ''), coalesce(s.avatar_url, ''),
        coalesce(s.company, ''), coalesce(s.attributes, '{{}}'::jsonb), 'verified', 'import',
        %(now)s, NULL, NULL, 0, %(now)s, %(now)s, NULL
    FROM {STAGE} s
    WHERE s.contact_id IS NULL AND (s.external_id IS NOT NULL) = %(with_external_id)s
    ORDER BY s.pos
    ON CONFLICT (agent_id, external_id) DO NOTHING
    RETURNING id
)
UPDATE {STAGE} s SET contact_id = ins.id, matched = 'new' FROM ins WHERE s.new_id = ins.id
"""

# One stage row per contact: when two rows of a batch reach the same contact by different
# keys (an id in one, its external id in another), the later row wins.
SAME_CONTACT = f"""
SELECT pos, winner FROM (
    SELECT pos, max(pos) OVER (PARTITION BY contact_id) AS winner
    FROM {STAGE} WHERE contact_id IS NOT NULL
) t WHERE pos <> winner
"""


def _field_change(name: str) -> str:
    return (
        f"'{name}', CASE WHEN o.{name} IS DISTINCT FROM o.n_{name} "
        f"THEN jsonb_build_array(o.{name}, o.n_{name}) END"
    )


# Existing contacts: compute the new values and their changes, write only the rows that
# change. `o` is the contact before the update (the statement's snapshot).
UPDATE_MATCHED = f"""
WITH o AS (
    SELECT c.id, s.pos, c.external_id, c.name, c.email, c.phone, c.avatar_url, c.company,
        c.attributes, c.identity, c.deleted_at,
        CASE WHEN c.external_id IS NULL THEN coalesce(s.external_id, c.external_id)
             ELSE c.external_id END AS n_external_id,
        coalesce(s.name, c.name) AS n_name,
        coalesce(s.email, c.email) AS n_email,
        coalesce(s.phone, c.phone) AS n_phone,
        coalesce(s.avatar_url, c.avatar_url) AS n_avatar_url,
        coalesce(s.company, c.company) AS n_company,
        c.attributes || coalesce(s.attributes, '{{}}'::jsonb) AS n_attributes,
        s.attributes AS s_attributes,
        CASE WHEN s.matched = 'ext' THEN 'verified' ELSE c.identity END AS n_identity,
        CASE WHEN s.matched IN ('ext', 'id') THEN NULL ELSE c.deleted_at END AS n_deleted_at
    FROM {CONTACT} c JOIN {STAGE} s ON s.contact_id = c.id
    WHERE s.matched IN ('id', 'ext', 'email', 'phone')
    FOR UPDATE OF c
), changed AS (
    SELECT o.*,
        jsonb_strip_nulls(jsonb_build_object(
            {_field_change("external_id")},
            {", ".join(_field_change(n) for n in CORE)},
            {_field_change("identity")},
            'deleted_at', CASE WHEN o.deleted_at IS DISTINCT FROM o.n_deleted_at
                THEN jsonb_build_array(to_jsonb(o.deleted_at), NULL) END
        )) || coalesce((
            SELECT jsonb_object_agg('attributes.' || e.key,
                                    jsonb_build_array(o.attributes -> e.key, e.value))
            FROM jsonb_each(o.s_attributes) e
            WHERE o.attributes -> e.key IS DISTINCT FROM e.value
        ), '{{}}'::jsonb) AS changes
    FROM o
    WHERE (o.external_id, o.name, o.email, o.phone, o.avatar_url, o.company, o.attributes,
           o.identity, o.deleted_at)
        IS DISTINCT FROM
          (o.n_external_id, o.n_name, o.n_email, o.n_phone, o.n_avatar_url, o.n_company,
           o.n_attributes, o.n_identity, o.n_deleted_at)
), upd AS (
    UPDATE {CONTACT} c SET
        external_id = ch.n_external_id, name = ch.n_name, email = ch.n_email,
        phone = ch.n_phone, avatar_url = ch.n_avatar_url, company = ch.n_company,
        attributes = ch.n_attributes, deleted_at = ch.n_deleted_at,
        identity = ch.n_identity,
        identity_source = CASE WHEN ch.n_identity <> ch.identity THEN 'import'
                               ELSE c.identity_source END,
        verified_at = CASE WHEN ch.n_identity <> ch.identity THEN %(now)s ELSE c.verified_at END,
        fingerprint = CASE WHEN ch.n_identity = 'verified' THEN NULL ELSE c.fingerprint END,
        updated_at = %(now)s
    FROM changed ch WHERE c.id = ch.id
    RETURNING c.id
)
SELECT ch.id, ch.pos, ch.changes FROM changed ch
"""

TAGS_CREATE = f"""
INSERT INTO {TAG} (agent_id, name, created_at)
SELECT DISTINCT ON (lower(t)) %(agent)s, t, %(now)s
FROM {STAGE} s, unnest(s.tags) AS t
WHERE s.contact_id IS NOT NULL
ORDER BY lower(t), t
ON CONFLICT DO NOTHING
"""
# The tags each contact gains.
TAGS_LINK = f"""
WITH wanted AS (
    SELECT DISTINCT s.contact_id, tg.id AS tag_id
    FROM {STAGE} s, unnest(s.tags) AS t, {TAG} tg
    WHERE s.contact_id IS NOT NULL AND tg.agent_id = %(agent)s AND lower(tg.name) = lower(t)
), ins AS (
    INSERT INTO {CONTACT_TAG} (contact_id, tag_id, created_at)
    SELECT contact_id, tag_id, %(now)s FROM wanted
    ON CONFLICT DO NOTHING
    RETURNING contact_id, tag_id
)
SELECT i.contact_id, array_agg(tg.name)
FROM ins i JOIN {TAG} tg ON tg.id = i.tag_id
GROUP BY i.contact_id
"""
TAG_NAMES = f"""
SELECT ct.contact_id, array_agg(tg.name) FROM {CONTACT_TAG} ct
JOIN {TAG} tg ON tg.id = ct.tag_id WHERE ct.contact_id = ANY(%s) GROUP BY ct.contact_id
"""
STRIPE_ACCOUNTS = f"""
SELECT contact_id, label, stripe_id, stripe_email FROM {STRIPE}
WHERE contact_id = ANY(%(ids)s) ORDER BY contact_id, created_at, id
"""
# Accounts are added or updated by stripe_id; a blank label or email keeps the saved one.
STRIPE_UPSERT = f"""
INSERT INTO {STRIPE} (contact_id, label, stripe_id, stripe_email, created_at)
SELECT DISTINCT ON (s.contact_id, a ->> 'stripe_id') s.contact_id, coalesce(a ->> 'label', ''),
    a ->> 'stripe_id', coalesce(a ->> 'stripe_email', ''), %(now)s
FROM {STAGE} s, jsonb_array_elements(s.stripe) AS a
WHERE s.contact_id IS NOT NULL AND s.stripe IS NOT NULL
ON CONFLICT (contact_id, stripe_id) DO UPDATE SET
    label = coalesce(nullif(EXCLUDED.label, ''), {STRIPE}.label),
    stripe_email = coalesce(nullif(EXCLUDED.stripe_email, ''), {STRIPE}.stripe_email)
WHERE ({STRIPE}.label, {STRIPE}.stripe_email) IS DISTINCT FROM
    (coalesce(nullif(EXCLUDED.label, ''), {STRIPE}.label),
     coalesce(nullif(EXCLUDED.stripe_email, ''), {STRIPE}.stripe_email))
RETURNING contact_id
"""
COPY_AUDIT = (
    f"COPY {AUDIT} (agent_id, contact_id, action, channel, actor_label, "
    "actor_user_id, changes, created_at) FROM STDIN"
)

# Contacts whose only change was tags or Stripe accounts: their row's updated_at.
TOUCH_UPDATED = f"UPDATE {CONTACT} SET updated_at = %s WHERE id = ANY(%s)"


# --- Bulk actions (transfers.bulk.actions): one statement per batch of contacts -------------
# RETURNING names exactly the contacts that changed, so each gets one audit entry and a batch
# run twice changes (and audits) nothing the second time. Both databases speak this SQL
# (SQLite since 3.35); `ids` is the batch's size, at most a few thousand placeholders.


def tag_links_add(ids: int) -> str:
    """Link a tag to the agent's contacts among `ids` that lack it: (tag, at, agent, *ids)."""
    marks = ", ".join(["%s"] * ids)
    return (
        f"INSERT INTO {CONTACT_TAG} (contact_id, tag_id, created_at)"
        f" SELECT id, %s, %s FROM {CONTACT} WHERE agent_id = %s AND id IN ({marks})"
        " ON CONFLICT (contact_id, tag_id) DO NOTHING RETURNING contact_id"
    )


def tag_links_remove(ids: int) -> str:
    """Unlink a tag from the contacts among `ids` that have it: (tag, *ids)."""
    marks = ", ".join(["%s"] * ids)
    return (
        f"DELETE FROM {CONTACT_TAG} WHERE tag_id = %s AND contact_id IN ({marks})"
        " RETURNING contact_id"
    )
