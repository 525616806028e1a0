"""The REST API's plumbing, shared by every app's endpoints."""

# How an API client is asked for credentials (every 401 carries it).
AUTH_HEADER = 'Bearer realm="api"'
