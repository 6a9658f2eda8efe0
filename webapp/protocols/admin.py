from django.contrib import admin

from webapp.protocols.models import ProtocolEvent, UserProtocol


@admin.register(UserProtocol)
class UserProtocolAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "created_at"]


@admin.register(ProtocolEvent)
class ProtocolEventAdmin(admin.ModelAdmin):
    list_display = ["session", "time_s", "kind", "name", "received_at"]
