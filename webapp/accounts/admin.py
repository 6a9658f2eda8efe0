from django.contrib import admin

from webapp.accounts.models import AgentToken


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
