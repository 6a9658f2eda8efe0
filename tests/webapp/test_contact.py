"""Electrode contact checks through the server: the tab asks, the streaming agent
gets device.contact, its device.contact_report reaches the tab as live.contact."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async

from recorder.protocol import make_message
from tests.webapp.ingest_helpers import (
    connect_agent,
    make_recording,
    receive,
    say_hello,
    send_chunk,
)
from tests.webapp.test_labels_ingest import next_message_of, watching_tab

pytestmark = pytest.mark.usefixtures("ingest_storage", "close_communicators")

PAIRS = ["6-Ref", "5-6", "5-4"]


async def streaming_agent():
    """An agent that has sent the first chunk of its session (so it streams it)."""
    secret, session = await sync_to_async(make_recording)("alice")
    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    assert (await send_chunk(agent, session.pk, 0))["type"] == "chunk.ack"
    return agent, session


def contact_report(session_id: int, **fields) -> str:
    report = {"pairs": PAIRS, "resistance_kohm": [12.5, None, 640], "message": ""}
    return make_message("device.contact_report", session=session_id, **report | fields)


@pytest.mark.django_db(transaction=True)
async def test_the_tabs_request_reaches_the_streaming_agent():
    agent, session = await streaming_agent()
    tab = await watching_tab(session)
    await tab.send_to(text_data=json.dumps({"type": "contact.check"}))
    for _ in range(5):  # skip whatever else the agent is told (none expected)
        message = await receive(agent)
        if message["type"] == "device.contact":
            break
    assert message == {"v": 1, "type": "device.contact", "session": session.pk}
    await tab.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_the_agents_report_reaches_the_tab_as_live_contact():
    agent, session = await streaming_agent()
    tab = await watching_tab(session)
    await agent.send_to(text_data=contact_report(session.pk))
    contact = await next_message_of(tab, "live.contact")
    assert contact == {
        "type": "live.contact",
        "session": session.pk,
        "pairs": PAIRS,
        "resistance_kohm": [12.5, None, 640],
        "message": "",
    }
    await tab.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_report_without_a_measurement_carries_its_reason():
    agent, session = await streaming_agent()
    tab = await watching_tab(session)
    why = "a simulated armband has no electrodes to measure"
    await agent.send_to(
        text_data=contact_report(session.pk, pairs=[], resistance_kohm=[], message=why)
    )
    contact = await next_message_of(tab, "live.contact")
    assert contact["pairs"] == [] and contact["message"] == why
    await tab.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "fields, says",
    [
        ({"resistance_kohm": [1.0, 2.0]}, "3 pairs but 2 resistance values"),
        ({"pairs": [1, 2, 3]}, "pairs must be names"),
        ({"resistance_kohm": [1.0, "high", 3.0]}, "must hold numbers or null"),
        ({"resistance_kohm": [1.0, True, 3.0]}, "must hold numbers or null"),
    ],
)
async def test_a_bad_report_is_refused_by_name(fields, says):
    agent, session = await streaming_agent()
    await agent.send_to(text_data=contact_report(session.pk, **fields))
    error = await receive(agent)
    assert error["type"] == "error" and error["code"] == "bad_contact_report"
    assert says in error["message"]


@pytest.mark.django_db(transaction=True)
async def test_a_report_for_another_session_is_refused():
    agent, session = await streaming_agent()
    await agent.send_to(text_data=contact_report(session.pk + 1000))
    assert (await receive(agent))["code"] == "unknown_session"
