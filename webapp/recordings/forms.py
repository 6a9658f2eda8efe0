from django import forms

from webapp.protocols.catalog import protocol_choices
from webapp.recordings.models import RecordingSession, Subject


class SubjectForm(forms.ModelForm):
    class Meta:
        model = Subject
        fields = ["name", "handedness", "notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if Subject.objects.filter(owner=self.owner, name=name).exists():
            raise forms.ValidationError(f"You already have a subject called {name!r}.")
        return name


class SessionForm(forms.ModelForm):
    class Meta:
        model = RecordingSession
        fields = [
            "subject",
            "band_placement",
            "band_rotation_deg",
            "protocol_name",
            "notes",
        ]
        labels = {
            "band_rotation_deg": "Band rotation (degrees)",
            "protocol_name": "Protocol",
        }
        widgets = {"notes": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        # only the user's own subjects can be chosen
        self.fields["subject"].queryset = Subject.objects.filter(owner=owner)
        # built-in protocols and the user's own (see the Protocols page)
        self.fields["protocol_name"] = forms.ChoiceField(
            choices=protocol_choices(owner), label="Protocol"
        )

    def clean_band_rotation_deg(self):
        rotation = self.cleaned_data["band_rotation_deg"]
        if not -180.0 <= rotation <= 180.0:
            raise forms.ValidationError(
                "Rotation must be between -180 and 180 degrees."
            )
        return rotation


class StartForm(forms.Form):
    agent = forms.IntegerField()
