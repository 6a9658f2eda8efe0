"""The Protocols page: the built-in protocols, and the user's own to add or delete."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from recorder.guided.poses import GESTURE_NAMES
from webapp.protocols.catalog import builtins
from webapp.protocols.forms import ProtocolForm
from webapp.protocols.models import UserProtocol


@login_required
def protocols(request):
    form = ProtocolForm(request.POST or None, owner=request.user)
    if request.method == "POST" and form.is_valid():
        protocol = form.cleaned_data["definition"]
        UserProtocol.objects.create(
            owner=request.user, name=protocol.name, definition=protocol.as_dict()
        )
        messages.success(request, f"Protocol {protocol.name} added.")
        return redirect("protocols")
    if not form.is_bound:
        form.initial["definition"] = json.dumps(_example(), indent=2)
    rows = [(p, True) for p in builtins().values()]
    rows += [
        (row.protocol, row) for row in UserProtocol.objects.filter(owner=request.user)
    ]
    return render(
        request,
        "protocols/protocols.html",
        {"form": form, "rows": rows, "gestures": GESTURE_NAMES},
    )


@login_required
@require_POST
def delete_protocol(request, protocol_id: int):
    row = get_object_or_404(UserProtocol, pk=protocol_id, owner=request.user)
    row.delete()
    messages.success(request, f"Protocol {row.name} deleted.")
    return redirect("protocols")


def _example() -> dict:
    """A starting point for a new protocol: the calibration, renamed."""
    example = builtins()["calibration"].as_dict()
    example.update(name="my-protocol", title="My protocol")
    return example
