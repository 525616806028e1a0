"""The PostgreSQL trigram index behind contact search, shared by its migration and by the
bulk loader that drops and rebuilds indexes."""

TRIGRAM_INDEX_NAME = "contact_search_trgm"

# Substring search ("as you type") over name, email, external id and phone: a trigram GIN
# index on the generated search_text column, led by agent_id (btree_gin) so one agent's
# search never wades through another agent's matches.
TRIGRAM_INDEX_SQL = (
    f"CREATE INDEX {TRIGRAM_INDEX_NAME} ON contacts_contact "
    "USING gin (agent_id, search_text gin_trgm_ops) WHERE deleted_at IS NULL"
)
