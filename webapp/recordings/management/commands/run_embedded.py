"""python manage.py run_embedded: the whole product on one machine, nothing else needed.

Migrates, makes a demo login and agent token, then runs daphne, a Celery worker and a
simulated agent as child processes until Ctrl-C.
"""

import os
import signal
import subprocess
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from recorder.session_file import write_session
from recorder.simulate_file import simulate_session
from webapp.accounts.models import AgentToken, hash_token
from webapp.processes import agent_command, server_command, worker_command
from webapp.recordings.importing import import_session_file
from webapp.recordings.models import Subject

DEMO_USER = "demo"
DEMO_PASSWORD = "demo-hand-2026"
DEMO_PERSON = 1  # the simulated person (seed) of the demo sessions and agent
DEMO_SESSIONS = (1, 2)  # their recorded sessions; the live agent streams session 0


class Command(BaseCommand):
    help = "Run the embedded system: server, Celery worker and a simulated agent."

    def add_arguments(self, parser):
        parser.add_argument(
            "--port", type=int, default=int(os.environ.get("PORT", 8000))
        )
        parser.add_argument("--host", default="127.0.0.1")

    def handle(self, *args, port, host, **options):
        call_command("migrate", interactive=False, verbosity=0)
        user = self.demo_user()
        token_file = self.demo_token_file(user)
        children = self.start_children(host, port, token_file)
        self.stdout.write(
            self.style.SUCCESS(
                f"\nEMG hand tracking is running at http://{host}:{port}/\n"
                f"  log in as {DEMO_USER} / {DEMO_PASSWORD}\n"
                "  a simulated armband agent is connected;"
                " press Ctrl-C to stop everything\n"
            )
        )
        self.supervise(children)

    def demo_user(self):
        user, created = get_user_model().objects.get_or_create(
            username=DEMO_USER, defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        Subject.objects.get_or_create(owner=user, name="Demo subject")
        if created:
            self.import_demo_sessions(user)
        return user

    def import_demo_sessions(self, user):
        """Two sessions of a simulated person with webcam landmarks, ready to label,
        then to train on (one to hold out). The demo agent wears the same person's
        band (DEMO_PERSON), in a session of its own, so a model trained on these
        follows its hand live."""
        for session in DEMO_SESSIONS:
            path = settings.VAR_DIR / f"demo-session-{session}.h5"
            recording = simulate_session(90.0, seed=DEMO_PERSON, session=session)
            write_session(path, recording)
            import_session_file(user, path, "Simulated person")

    def demo_token_file(self, user):
        """The demo agent's token, kept in var/ so restarts reuse the same agent."""
        path = settings.VAR_DIR / "demo-agent.token"
        if path.exists():
            secret = path.read_text().strip()
            if (
                AgentToken.objects.active()
                .filter(token_hash=hash_token(secret))
                .exists()
            ):
                return path
        _, secret = AgentToken.issue(user, "demo simulated armband")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secret)
        path.chmod(0o600)
        return path

    def start_children(self, host, port, token_file):
        spool = settings.VAR_DIR / "agent-spool"
        commands = {
            "server": server_command(host, port),
            "worker": worker_command(),
            "agent": agent_command(
                f"ws://{host}:{port}", "--token-file", str(token_file),
                "--device", "simulated", "--seed", str(DEMO_PERSON),
                "--spool", str(spool),
            ),
        }  # fmt: skip
        return {name: subprocess.Popen(cmd) for name, cmd in commands.items()}

    def supervise(self, children):
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        try:
            while not stopping:
                for name, child in children.items():
                    if child.poll() is not None:
                        self.stderr.write(
                            f"the {name} process exited ({child.returncode}); "
                            "stopping everything"
                        )
                        return
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            for child in children.values():
                child.terminate()
            for child in children.values():
                child.wait(timeout=15)
