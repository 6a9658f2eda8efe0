"""Faults during a recording, with real processes (tests/system/recording_stack.py):
Redis restarted, the agent's daphne process killed, PostgreSQL restarted, the chunk
store's disk full. Each time the session file must hold exactly what the armband
produced. Redis and PostgreSQL are private instances (tests/system/faults.py): the
shared ones serve other test runs."""

import pytest
from django.conf import settings

from tests.small_disk import fill, small_disk
from tests.system.faults import (
    LiveTab,
    PrivatePostgres,
    PrivateRedis,
    manage,
    seed_lab,
    wait_for,
)
from tests.system.processes import server_environment
from tests.system.recording_stack import (
    PASSWORD,
    Lab,
    check_nothing_lost,
    pause,
    recording,
)

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


def database_url_of_the_tests() -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def lab(alice_recording, tmp_path) -> Lab:
    """Alice's token and session in the test database."""
    return Lab(server_environment(tmp_path), database_url_of_the_tests(),
               alice_recording.secret, alice_recording.token.pk,
               alice_recording.session.pk, tmp_path)  # fmt: skip


def test_a_redis_restart_during_a_recording_loses_nothing(lab, tmp_path):
    redis = PrivateRedis(tmp_path / "redis")
    lab.env["REDIS_URL"] = redis.url
    try:
        with recording(lab) as stack:
            browser = stack.browser()
            tab = LiveTab(browser, lab.session_id)  # live EMG goes through Redis
            pause(4)
            redis.kill()  # no persistence: queues and channel groups are gone
            pause(2)
            redis.start()
            updates_at_restart = tab.updates
            # the open tab gets live EMG again, without a reload
            wait_for(
                lambda: tab.updates > updates_at_restart + 5, 20,
                "live EMG to reach the open tab after the restart",
            )  # fmt: skip
            pause(2)
            stack.press(browser, "stop")
            session = stack.wait_until_done()
            tab.close()
            agent_log = stack.agent_log()
    finally:
        redis.kill()
    check_nothing_lost(lab, session, min_seconds=8)
    assert tab.updates > 0, "the tab saw no live EMG: Redis was never in the path"
    assert agent_log.count("connected to") >= 2, agent_log  # the outage was felt


def test_the_agent_moves_to_another_daphne_when_its_own_is_killed(lab):
    with recording(lab, servers=2) as stack:
        pause(4)
        assert f"connected to ws://127.0.0.1:{stack.ports[0]}" in stack.agent_log()
        stack.processes["server-0"].kill()  # SIGKILL: no goodbye to the agent
        pause(4)
        stack.press(stack.browser(1), "stop")
        session = stack.wait_until_done()
        agent_log = stack.agent_log()
    check_nothing_lost(lab, session, min_seconds=7)
    assert f"connected to ws://127.0.0.1:{stack.ports[1]}" in agent_log, agent_log


def test_the_server_recovers_from_a_postgresql_restart_by_itself(
    production_services, tmp_path
):
    postgres = PrivatePostgres()
    try:
        env = server_environment(tmp_path) | {
            "DATABASE_URL": postgres.create_database("emg"),
            "CHUNK_STORE_DIR": str(tmp_path / "chunks"),
            "MEDIA_ROOT": str(tmp_path / "media"),
            "CONN_MAX_AGE": "60",  # as production: kept connections, health-checked
        }
        manage(env, "migrate", "--verbosity", "0")
        seeded = seed_lab(env, PASSWORD)
        lab = Lab(env, env["DATABASE_URL"], seeded["secret"], seeded["token"],
                  seeded["session"], tmp_path)  # fmt: skip
        with recording(lab) as stack:
            browser = stack.browser()
            pause(3)
            postgres.stop("immediate")  # every connection dies, as in a crash
            pause(2)
            postgres.start()
            # no restart of ours: the very next page load works
            status, page = browser.get("/sessions/")
            assert status == 200, page[-2000:]
            pause(3)
            stack.press(browser, "stop")
            session = stack.wait_until_done()
    finally:
        postgres.close()
    check_nothing_lost(lab, session, min_seconds=6)


def test_a_full_disk_is_told_to_the_agent_and_loses_nothing(lab, tmp_path):
    with small_disk(tmp_path / "chunks", size_kib=2048) as chunk_disk:
        lab.env["CHUNK_STORE_DIR"] = str(chunk_disk)
        with recording(lab) as stack:
            pause(3)
            filler = fill(chunk_disk)
            pause(5)  # the agent keeps recording into its spool
            told = stack.agent_log().count("(storage_failed)")
            filler.unlink()  # space returns
            pause(2)
            stack.press(stack.browser(), "stop")
            session = stack.wait_until_done()
    check_nothing_lost(lab, session, min_seconds=9)
    assert told > 0, "the agent was never told that the server could not store"
