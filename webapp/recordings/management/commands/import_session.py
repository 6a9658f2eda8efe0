"""python manage.py import_session FILE --user NAME [--subject NAME]"""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from recorder.session_file import SessionFormatError
from webapp.recordings.importing import import_session_file


class Command(BaseCommand):
    help = "Add an existing session file (e.g. from `python -m recorder simulate`)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--user", required=True, help="who will own the session")
        parser.add_argument("--subject", default="Imported", help="subject's name")

    def handle(self, *args, file, user, subject, **options):
        owner = get_user_model().objects.filter(username=user).first()
        if owner is None:
            raise CommandError(f"no user called {user!r}")
        try:
            session = import_session_file(owner, file, subject)
        except (OSError, SessionFormatError) as exc:
            raise CommandError(f"cannot import {file}: {exc}") from None
        self.stdout.write(f"imported {file} as session {session.pk}")
