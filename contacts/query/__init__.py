"""Finding contacts: the filter language (django-filter), the SQL it builds, and keyset
pages. The dashboard table, the API list and exports all go through here.

- `filterset`: `ContactFilterSet`, every list parameter and its error message;
- `expressions`: attribute values as sortable expressions, row comparison, search;
- `keyset`: ordering and pages by (sort key, id) at any depth.
"""
