from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt

from core.api.errors import error_body


@csrf_exempt  # API clients send no CSRF token: any method gets the JSON 404, not a 403 page
def api_not_found(request: HttpRequest, *args: object, **kwargs: object) -> JsonResponse:
    """Any /api/ path no route matches (a malformed contact id included): 404 in the API's
    error shape rather than the dashboard's HTML page."""
    message = "No API endpoint at this path."
    if not request.path.endswith("/"):
        try:
            resolve(request.path + "/")
            message += f" Did you mean {request.path}/ ?"
        except Resolver404:
            pass
    return JsonResponse(error_body("not_found", message), status=404)
