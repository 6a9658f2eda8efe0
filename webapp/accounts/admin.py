from django.contrib import admin

from webapp.accounts.login_limit import AdminLoginForm
from webapp.accounts.models import AgentToken

# the admin's login counts wrong passwords like the portal's (login_limit.py)
admin.site.login_form = AdminLoginForm


@admin.register(AgentToken)
class AgentTokenAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "owner",
        "hint",
        "created_at",
        "revoked_at",
        "connected",
        "last_seen_at",
    ]
    list_filter = ["connected"]
    readonly_fields = ["token_hash", "hint"]
