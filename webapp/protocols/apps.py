from django.apps import AppConfig


class ProtocolsConfig(AppConfig):
    name = "webapp.protocols"
    label = "protocols"
