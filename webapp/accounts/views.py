"""The agent tokens page: create (secret shown once), list, revoke."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from webapp.accounts.models import AgentToken


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="e.g. the laptop it runs on")


@login_required
def tokens(request):
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        token, secret = AgentToken.issue(request.user, form.cleaned_data["name"])
        # rendered, not redirected: this response is the only time the secret is shown
        return render(
            request, "accounts/token_created.html", {"token": token, "secret": secret}
        )
    rows = AgentToken.objects.filter(owner=request.user)
    return render(request, "accounts/tokens.html", {"form": form, "tokens": rows})


@login_required
@require_POST
def revoke_token(request, token_id: int):
    token = get_object_or_404(AgentToken, pk=token_id, owner=request.user)
    if not token.revoked:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        async_to_sync(get_channel_layer().group_send)(
            token.group_name, {"type": "agent.revoked"}
        )
        messages.success(
            request, f"Token {token.name} revoked; its agent is disconnected."
        )
    return redirect("tokens")
