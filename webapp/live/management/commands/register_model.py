"""python manage.py register_model CHECKPOINT --user NAME [--name NAME]

Adds a checkpoint trained elsewhere (`python -m training train ... --out DIR` writes
DIR/final.pt) to a user's models, as a complete run: the live hand page offers it.
"""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from training.checkpoint import CheckpointError
from webapp.live.checkpoints import register_checkpoint


class Command(BaseCommand):
    help = "Register a trained checkpoint as one of a user's complete models."

    def add_arguments(self, parser):
        parser.add_argument("checkpoint", type=Path, help="a final.pt from training")
        parser.add_argument("--user", required=True, help="the owner's username")
        parser.add_argument("--name", default="", help="shown in the model lists")

    def handle(self, *args, checkpoint, user, name, **options):
        owner = get_user_model().objects.filter(username=user).first()
        if owner is None:
            raise CommandError(f"there is no user named {user!r}")
        try:
            run = register_checkpoint(owner, checkpoint, name or checkpoint.stem)
        except CheckpointError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"registered {checkpoint} as model {run.pk} of {user}")
