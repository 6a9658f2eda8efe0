import json

from django import forms

from recorder.guided.protocols import GuidedProtocolError, parse_protocol
from webapp.protocols.catalog import FREE_RECORDING, builtins
from webapp.protocols.models import UserProtocol


class ProtocolForm(forms.Form):
    """A user's own protocol, written as JSON (the built-in files show the format)."""

    definition = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false"}),
        label="Protocol (JSON)",
    )

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner

    def clean_definition(self):
        try:
            protocol = parse_protocol(json.loads(self.cleaned_data["definition"]))
        except json.JSONDecodeError as error:
            raise forms.ValidationError(f"Not valid JSON: {error}") from None
        except GuidedProtocolError as error:
            raise forms.ValidationError(str(error)) from None
        if protocol.name in builtins() or protocol.name == FREE_RECORDING:
            raise forms.ValidationError(
                f"name: {protocol.name!r} is a built-in protocol; choose another name"
            )
        if UserProtocol.objects.filter(owner=self.owner, name=protocol.name).exists():
            raise forms.ValidationError(
                f"name: you already have a protocol called {protocol.name!r}"
            )
        return protocol
