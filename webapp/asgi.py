"""ASGI entry point for daphne: HTTP through Django, websockets through Channels.

Agents authenticate with a token header (and send no Origin); browser tabs use their
login session and must come from an allowed host. The "channel" protocol is what
`manage.py runworker inference-<k>` serves (webapp/live/worker.py).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
django_http = get_asgi_application()  # sets Django up before consumers are imported

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.urls import path  # noqa: E402

from webapp.live.consumers import HandConsumer  # noqa: E402
from webapp.live.worker import channel_application  # noqa: E402
from webapp.recordings.consumers import AgentConsumer  # noqa: E402
from webapp.recordings.live_consumer import LiveConsumer  # noqa: E402
from webapp.registry.consumers import TrainingConsumer  # noqa: E402


def browser_only(consumer):
    return AllowedHostsOriginValidator(AuthMiddlewareStack(consumer))


websocket_routes = URLRouter(
    [
        path("ws/agent/", AgentConsumer.as_asgi()),
        path(
            "ws/sessions/<int:session_id>/live/", browser_only(LiveConsumer.as_asgi())
        ),
        path(
            "ws/sessions/<int:session_id>/hand/", browser_only(HandConsumer.as_asgi())
        ),
        path("ws/models/<int:run_id>/", browser_only(TrainingConsumer.as_asgi())),
    ]
)

application = ProtocolTypeRouter(
    {
        "http": ASGIStaticFilesHandler(django_http)
        if settings.SERVE_STATIC
        else django_http,
        "websocket": websocket_routes,
        # `manage.py runworker inference-<k>`: the live hand's inference workers
        "channel": channel_application(),
    }
)
