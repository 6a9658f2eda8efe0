"""The browser's live view of a training run: every epoch's metrics as they come."""

from __future__ import annotations

import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from webapp.registry.models import TrainingRun, training_group


@database_sync_to_async
def owns_run(user_id: int, run_id: int) -> bool:
    return TrainingRun.objects.filter(pk=run_id, owner_id=user_id).exists()


class TrainingConsumer(AsyncWebsocketConsumer):
    """A tab watching one of its user's runs; `training.epoch` events pass through."""

    async def connect(self):
        user = self.scope.get("user")
        run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        if not (user and user.is_authenticated) or not await owns_run(user.pk, run_id):
            await self.close(code=4003)
            return
        self.group = training_group(run_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def training_epoch(self, event):
        await self.send(text_data=json.dumps(event))
