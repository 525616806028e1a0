"""The contacts dashboard: `table` (the list, its state, bulk actions) and `contact` (one
contact's page, edits, tags, Stripe links, merge, delete, erase, data export)."""
