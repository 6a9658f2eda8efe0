"""Error pages that say what was wrong with the request."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from django.views.defaults import bad_request as django_bad_request


def bad_request(request, exception=None):
    """400s, except a form body over DATA_UPLOAD_MAX_MEMORY_SIZE: 413, saying so."""
    if isinstance(exception, RequestDataTooBig):
        limit_kb = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1024
        return HttpResponse(
            f"The form you sent is too large: this server accepts at most "
            f"{limit_kb} KB of form data (FORM_MAX_KB).",
            status=413,
            content_type="text/plain; charset=utf-8",
        )
    return django_bad_request(request, exception)
