"""The generated Python bindings (`coachsync`, from coachsync-mobile) against real
`coachsync serve` processes on 127.0.0.1, each started by its test and killed at
teardown. Every wait is bounded."""

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

import coachsync
from conftest import (
    BINDINGS_DIR,
    SYNC_TIMEOUT_MS,
    DocumentRecorder,
    LogRecorder,
    StatusRecorder,
    drain_callbacks,
    template,
)

Err = coachsync.CoachsyncError
State = coachsync.SyncState
LogLevel = coachsync.LogLevel

OBSERVED_AT = 1773162300000  # 2026-03-10T16:25:00Z


def observation(title, setting="classroom"):
    """A minimal valid observation (docs/DOMAIN.md: title, setting, observedAt,
    script and status are required; `create` with the kind fills in the schema)."""
    return json.dumps(
        {
            "title": title,
            "setting": setting,
            "observedAt": OBSERVED_AT,
            "script": [],
            "status": "draft",
        }
    )


def entry(entry_id, text, at=OBSERVED_AT + 60_000):
    return json.dumps({"id": entry_id, "at": at, "text": text, "tags": []})


def sync(device, timeout_ms=SYNC_TIMEOUT_MS):
    return asyncio.run(device.sync_now(timeout_ms))


def script_texts(doc):
    return [item["text"] for item in doc.get("script", [])]


def a_url_from_elsewhere(open_device):
    """A valid URL of a document this test's devices never held."""
    other = open_device("elsewhere")
    url = other.create(None, json.dumps({"title": "elsewhere"}))
    other.shutdown()
    return url


# ----- 1. offline edits, the server, a second device -------------------------------------


def test_offline_edit_reaches_a_restarted_server(start_server, open_device, cli, observation_template):
    server = start_server()
    a = open_device("a", server.url)
    walkthrough = a.create("observation", observation_template)
    assert sync(a) == coachsync.SyncResult(safe=1, not_safe=[])
    assert a.status(walkthrough).state == State.SAFE_ON_SERVER

    server.kill()  # SIGKILL; the device is offline from now on
    a.push(walkthrough, "script", entry("offline-1", "Room 14's door opens; students line up."))
    assert a.status(walkthrough).state == State.PENDING
    visit = a.create("observation", observation("Room 12, grade 3 math"))
    assert a.status(visit).state == State.LOCAL_ONLY
    assert a.status(visit).last_sync_ms is None
    assert a.pending_count() == 2

    restarted = start_server(listen=server.addr)  # same address, same data directory
    result = sync(a)
    assert result.not_safe == []
    assert result.safe == 2
    for url in (walkthrough, visit):
        status = a.status(url)
        assert status.state == State.SAFE_ON_SERVER, url
        assert status.last_sync_ms is not None and status.last_sync_ms > 0
    assert a.pending_count() == 0

    # What the restarted server holds, read back by a Rust peer (the CLI device).
    cli("peer", restarted.url, "fetch", walkthrough, "--timeout", "15")
    shown = json.loads(cli("peer", None, "show", walkthrough))
    assert "Room 14's door opens; students line up." in script_texts(shown)
    assert shown == json.loads(a.get(walkthrough))


def test_second_device_fetches_and_observes_edits(start_server, open_device):
    if not hasattr(coachsync.Device, "fetch"):
        pytest.skip(
            "the bindings have no Device.fetch: a device cannot get a document it never "
            "held (get gives NotFound), so no second device can observe it"
        )
    server = start_server()
    a = open_device("a", server.url)
    url = a.create("observation", observation("Room 7 reading block"))
    a.push(url, "script", entry("e1", "Partner reading starts."))
    assert sync(a).not_safe == []

    b = open_device("b", server.url)
    with pytest.raises(Err.NotFound):
        b.get(url)  # never held: only a fetch brings it here
    asyncio.run(b.fetch(url, SYNC_TIMEOUT_MS))
    assert b.get(url) == a.get(url)
    assert b.status(url).state == State.SAFE_ON_SERVER

    seen = DocumentRecorder()
    subscription = b.observe(url, seen)
    seen.calls.wait_for(lambda doc: script_texts(doc) == ["Partner reading starts."], "the current document")

    a.push(url, "script", entry("e2", "Two groups finish early and start the extension."))
    assert sync(a).not_safe == []
    # b is connected: the server brings it the change without b asking.
    doc = seen.calls.wait_for(
        lambda doc: "Two groups finish early and start the extension." in script_texts(doc),
        "a's edit at b's observer",
    )
    assert script_texts(doc) == ["Partner reading starts.", "Two groups finish early and start the extension."]
    assert sync(b).not_safe == []
    assert b.get(url) == a.get(url)
    subscription.cancel()


def test_fetch_errors(start_server, open_device):
    if not hasattr(coachsync.Device, "fetch"):
        pytest.skip("the bindings have no Device.fetch")
    server = start_server()
    absent = a_url_from_elsewhere(open_device)  # never synced: the server lacks it
    b = open_device("b", server.url)
    with pytest.raises(Err.NotFound):
        asyncio.run(b.fetch(absent, SYNC_TIMEOUT_MS))
    with pytest.raises(Err.InvalidInput):
        asyncio.run(b.fetch("automerge:not-an-id", SYNC_TIMEOUT_MS))
    assert b.list(None) == []

    offline = open_device("offline")
    with pytest.raises(Err.InvalidInput, match="no server is configured"):
        asyncio.run(offline.fetch(absent, 1000))

    refused = open_device("refused", f"ws://127.0.0.1:{free_loopback_port()}/sync")
    started = time.monotonic()
    with pytest.raises(Err.Network):
        asyncio.run(refused.fetch(absent, 2000))
    assert time.monotonic() - started < 2.0 + 3.0


def test_observer_gets_an_edit_made_by_a_cli_peer(start_server, open_device, cli):
    server = start_server()
    a = open_device("a", server.url)
    url = a.create("observation", observation("Hallway, 2nd period"))
    assert sync(a).not_safe == []
    seen = DocumentRecorder()
    subscription = a.observe(url, seen)
    seen.calls.wait_for(lambda doc: doc["title"] == "Hallway, 2nd period", "the current document")

    cli("peer", server.url, "fetch", url, "--timeout", "15")
    cli("peer", None, "set", url, "title", '"Hallway, 2nd period (east wing)"')
    cli("peer", None, "push", url, "script", entry("cli-1", "No adult in the east hallway."))
    cli("peer", server.url, "sync", "--timeout", "15")

    assert sync(a).not_safe == []
    doc = seen.calls.wait_for(
        lambda doc: doc["title"] == "Hallway, 2nd period (east wing)"
        and script_texts(doc) == ["No adult in the east hallway."],
        "the CLI peer's edit at a's observer",
    )
    assert doc == json.loads(a.get(url))
    subscription.cancel()


# ----- 2. bad input changes nothing --------------------------------------------------------


def test_bad_json_is_invalid_input_and_stores_nothing(open_device):
    a = open_device("a")
    url = a.create(None, json.dumps({"title": "Room 3", "notes": []}))
    before = (a.list(None), a.get(url), a.pending_count())

    with pytest.raises(Err.InvalidInput, match="invalid JSON"):
        a.create(None, "{not json")
    with pytest.raises(Err.InvalidInput, match="invalid JSON"):
        a.create("observation", '{"title": "Room 4",')
    with pytest.raises(Err.InvalidInput, match="must be a JSON object"):
        a.create(None, "[1, 2]")
    with pytest.raises(Err.InvalidInput, match="invalid JSON"):
        a.set(url, "title", "Room 3 without quotes")
    with pytest.raises(Err.InvalidInput, match="invalid JSON"):
        a.push(url, "notes", "{")

    assert (a.list(None), a.get(url), a.pending_count()) == before


def test_unknown_url_is_not_found_and_malformed_url_is_invalid_input(open_device):
    a = open_device("a")
    absent = a_url_from_elsewhere(open_device)
    assert coachsync.is_valid_document_url(absent)

    # A well-formed URL of a document the device does not hold: NotFound
    # (coachsync_error.rs maps UnknownDocument to NotFound).
    for call in (
        lambda: a.get(absent),
        lambda: a.set(absent, "title", '"x"'),
        lambda: a.push(absent, "notes", '"x"'),
        lambda: a.status(absent),
        lambda: a.observe(absent, DocumentRecorder()),
    ):
        with pytest.raises(Err.NotFound, match=absent.removeprefix("automerge:")):
            call()

    # Not an automerge URL at all: InvalidInput (InvalidUrl / InvalidDocumentId).
    for malformed in ("automerge:not-an-id", "https://example.org/doc", ""):
        assert not coachsync.is_valid_document_url(malformed)
        with pytest.raises(Err.InvalidInput):
            a.get(malformed)
        with pytest.raises(Err.InvalidInput):
            a.set(malformed, "title", '"x"')
    assert a.list(None) == []


def test_invalid_coaching_document_names_the_field_and_stores_nothing(open_device, observation_template):
    a = open_device("a")
    kept = a.create("observation", observation("Room 9"))
    before = (a.list(None), a.get(kept), a.pending_count())

    invalid = json.loads(observation_template)
    del invalid["setting"]
    invalid["script"][0]["at"] = "10:05"
    with pytest.raises(Err.InvalidInput) as refused:
        a.create("observation", json.dumps(invalid))
    assert "setting: is required" in str(refused.value)
    assert "script.0.at: must be a timestamp" in str(refused.value)

    with pytest.raises(Err.InvalidInput, match="is not a kind"):
        a.create("walkthrough", observation("Room 10"))
    with pytest.raises(Err.InvalidInput, match=r"script\.0\.at"):
        a.push(kept, "script", json.dumps({"id": "x", "at": "now", "text": "t"}))
    with pytest.raises(Err.InvalidInput, match="setting"):
        a.set(kept, "setting", '"gym"')
    with pytest.raises(Err.InvalidInput, match="not a list"):
        a.push(kept, "title", '"x"')
    with pytest.raises(Err.InvalidInput, match="path is empty"):
        a.set(kept, "", '"x"')

    assert (a.list(None), a.get(kept), a.pending_count()) == before


# ----- 3. no server to reach ---------------------------------------------------------------


def free_loopback_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sync_now_with_the_server_refusing_fails_with_network_within_the_timeout(open_device):
    a = open_device("a", f"ws://127.0.0.1:{free_loopback_port()}/sync")
    url = a.create("observation", observation("Room 1"))
    started = time.monotonic()
    with pytest.raises(Err.Network) as failed:
        sync(a, timeout_ms=2000)
    elapsed = time.monotonic() - started
    assert elapsed < 2.0 + 3.0, f"sync_now(2000) took {elapsed:.1f} s"
    assert "refused" in str(failed.value).lower()
    assert a.status(url).state == State.LOCAL_ONLY
    assert a.pending_count() == 1


def test_sync_now_with_a_server_that_never_answers_fails_with_network_within_the_timeout(open_device):
    # A socket that listens but never accepts: TCP connects, the WebSocket upgrade
    # never gets an answer.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        a = open_device("a", f"ws://127.0.0.1:{silent.getsockname()[1]}/sync")
        url = a.create("observation", observation("Room 2"))
        started = time.monotonic()
        with pytest.raises(Err.Network) as failed:
            sync(a, timeout_ms=2000)
        elapsed = time.monotonic() - started
        assert elapsed < 2.0 + 3.0, f"sync_now(2000) took {elapsed:.1f} s"
        assert str(failed.value)
        assert a.status(url).state == State.LOCAL_ONLY


def test_sync_now_without_a_server_is_invalid_input(open_device):
    a = open_device("a")
    a.create(None, json.dumps({"title": "offline"}))
    # coachsync_error.rs maps NoServer to InvalidInput: nothing to reach, not a failure
    # to reach it.
    with pytest.raises(Err.InvalidInput, match="no server is configured"):
        sync(a, timeout_ms=1000)


# ----- 4. concurrency ----------------------------------------------------------------------


def test_concurrent_sync_now_from_threads_and_tasks_all_succeed(start_server, open_device):
    server = start_server()
    a = open_device("a", server.url)
    urls = [a.create("observation", observation(f"Room {n}")) for n in range(5)]
    results, errors = [], []
    lock = threading.Lock()

    def record(fn):
        try:
            value = fn()
            with lock:
                results.append(value)
        except BaseException as e:  # noqa: BLE001 - every failure is reported below
            with lock:
                errors.append(e)

    def sync_in_thread():
        record(lambda: sync(a))

    def edit_in_thread(n):
        for i in range(5):
            record(lambda: a.push(urls[n], "script", entry(f"t{n}-{i}", f"note {i}")))

    async def many_tasks():
        return await asyncio.gather(*(a.sync_now(SYNC_TIMEOUT_MS) for _ in range(8)))

    threads = [threading.Thread(target=sync_in_thread) for _ in range(8)]
    threads += [threading.Thread(target=edit_in_thread, args=(n,)) for n in range(2)]
    threads += [threading.Thread(target=lambda: record(lambda: asyncio.run(many_tasks())))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=SYNC_TIMEOUT_MS / 1000 + 10)
        assert not t.is_alive(), "a thread did not finish"

    assert errors == []
    sync_results = [r for r in results if isinstance(r, coachsync.SyncResult)]
    sync_results += [r for group in results if isinstance(group, list) for r in group]
    assert len(sync_results) == 16
    assert all(r.safe + len(r.not_safe) == 5 for r in sync_results)

    final = sync(a)
    assert final == coachsync.SyncResult(safe=5, not_safe=[])
    assert a.pending_count() == 0
    assert len(script_texts(json.loads(a.get(urls[0])))) == 5
    assert len(script_texts(json.loads(a.get(urls[1])))) == 5


# ----- 5. observing ------------------------------------------------------------------------


def test_observe_status_reports_states_and_connection_and_cancel_stops_it(start_server, open_device):
    server = start_server()
    a = open_device("a")  # no server yet
    url = a.create("observation", observation("Room 5"))
    statuses = StatusRecorder()
    subscription = a.observe_status(statuses)
    calls = statuses.calls

    def status_of(state):
        return lambda c: c[0] == "status" and c[1] == url and c[2].state == state

    def connection(check):
        return lambda c: c[0] == "connection" and check(c[1])

    local = calls.wait_for(status_of(State.LOCAL_ONLY), "LocalOnly")
    assert local[2].last_sync_ms is None
    calls.wait_for(connection(lambda s: s.is_offline()), "Offline")

    a.set_server(server.url)
    assert sync(a).not_safe == []
    safe = calls.wait_for(status_of(State.SAFE_ON_SERVER), "SafeOnServer")
    assert safe[2].last_sync_ms is not None
    connected = calls.wait_for(connection(lambda s: s.is_connected()), "Connected")
    items = calls.items()
    assert items.index(local) < items.index(safe)
    assert items.index(connected) < items.index(safe)

    a.push(url, "script", entry("p1", "Exit tickets collected."))
    calls.wait_for(status_of(State.PENDING), "Pending after an edit")  # then safe again
    calls.wait_for(status_of(State.SAFE_ON_SERVER), "SafeOnServer again", start=items.index(safe) + 1)

    server.kill()
    waiting = calls.wait_for(connection(lambda s: s.is_waiting()), "Waiting after the server died")
    assert waiting[1].error

    subscription.cancel()
    seen = len(calls)
    # A second observer is the barrier: once it has the changes, the cancelled one
    # would have had them too.
    barrier = StatusRecorder()
    barrier_subscription = a.observe_status(barrier)
    a.push(url, "script", entry("p2", "Offline note."))
    a.set_server(None)
    barrier.calls.wait_for(status_of(State.PENDING), "Pending at the barrier")
    barrier.calls.wait_for(connection(lambda s: s.is_offline()), "Offline at the barrier")
    drain_callbacks()
    assert calls.items()[seen:] == []
    barrier_subscription.cancel()


def test_observe_document_gets_local_changes_and_cancel_stops_it(open_device):
    a = open_device("a")
    url = a.create(None, json.dumps({"title": "Room 6", "notes": []}))
    seen = DocumentRecorder()
    subscription = a.observe(url, seen)
    seen.calls.wait_for(lambda doc: doc == {"title": "Room 6", "notes": []}, "the current document")
    a.push(url, "notes", '"Students explain their reasoning"')
    seen.calls.wait_for(lambda doc: doc["notes"] == ["Students explain their reasoning"], "the edit")

    subscription.cancel()
    seen_before = len(seen.calls)
    barrier = DocumentRecorder()
    barrier_subscription = a.observe(url, barrier)
    a.set(url, "title", '"Room 6 (after cancel)"')
    barrier.calls.wait_for(lambda doc: doc["title"] == "Room 6 (after cancel)", "the edit at the barrier")
    drain_callbacks()
    assert seen.calls.items()[seen_before:] == []
    barrier_subscription.cancel()


def test_listener_that_raises_does_not_stop_other_callbacks(open_device):
    class Raising(coachsync.DocumentListener):
        def __init__(self):
            self.calls = 0

        def on_change(self, json_text):
            self.calls += 1
            raise RuntimeError("a listener bug")

    a = open_device("a")
    url = a.create(None, json.dumps({"notes": []}))
    raising, seen = Raising(), DocumentRecorder()
    raising_subscription = a.observe(url, raising)
    subscription = a.observe(url, seen)
    for n in range(3):
        a.push(url, "notes", json.dumps(f"note {n}"))
    seen.calls.wait_for(lambda doc: len(doc["notes"]) == 3, "every edit despite the raising listener")
    assert raising.calls >= 1
    raising_subscription.cancel()
    subscription.cancel()


# ----- 6. logging --------------------------------------------------------------------------


def test_set_logger_gets_log_lines_at_its_level(open_device, tmp_path, logger):
    open_device("info")
    level, target, message = logger.lines.wait_for(
        lambda line: "device opened" in line[2] and f"dir={tmp_path / 'info'}" in line[2],
        "`device opened` at the logger",
    )
    assert level == LogLevel.INFO
    assert target.startswith("coachsync_core")

    # At Warn, Info lines do not reach the logger.
    quiet = LogRecorder()
    coachsync.set_logger(quiet, LogLevel.WARN)
    open_device("warn")
    # The next logger is the barrier: its line comes after anything sent to `quiet`.
    after = LogRecorder()
    coachsync.set_logger(after, LogLevel.INFO)
    open_device("after")
    after.lines.wait_for(lambda line: f"dir={tmp_path / 'after'}" in line[2], "`device opened` at the next logger")
    assert [line for line in quiet.lines.items() if line[0] == LogLevel.INFO] == []
    # A replaced logger gets nothing more.
    assert [line for line in logger.lines.items() if str(tmp_path / "after") in line[2]] == []


EXIT_WHILE_CALLBACK_RUNS = """
import atexit, sys, tempfile, threading, time
sys.path.insert(0, sys.argv[1])
import coachsync
# Python ends threads that call into it while it shuts down, and a callback running
# then would abort the process: apps stop callbacks at exit, as docs/MOBILE.md says.
atexit.register(coachsync.stop_callbacks)
entered = threading.Event()
class Slow(coachsync.Logger):
    def log(self, level, target, message):
        entered.set()
        time.sleep(0.5)  # still running when the app exits
coachsync.set_logger(Slow(), coachsync.LogLevel.INFO)
device = coachsync.Device(tempfile.mkdtemp(), None)
assert entered.wait(20), "no log line"
"""


def test_an_app_that_stops_callbacks_at_exit_exits_cleanly_while_one_runs(tmp_path):
    env = dict(os.environ, RUST_BACKTRACE="0", TMPDIR=str(tmp_path))
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", EXIT_WHILE_CALLBACK_RUNS, str(BINDINGS_DIR)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert done.returncode == 0, f"exit {done.returncode}: {done.stderr.strip()}"


# ----- 7. pending count, list, close -------------------------------------------------------


def test_pending_count_and_list_by_kind_with_titles(start_server, open_device):
    a = open_device("a")
    assert a.pending_count() == 0
    assert a.list(None) == []
    visit = a.create("observation", observation("Room 12, grade 3 math"))
    walk = a.create("observation", observation("Lunchroom, 1st seating", setting="lunchroom"))
    team = a.create("team", template("team"))
    plain = a.create(None, json.dumps({"note": "no title here"}))
    assert a.pending_count() == 4

    everything = {s.url: s for s in a.list(None)}
    assert set(everything) == {visit, walk, team, plain}
    assert everything[visit].kind == "observation"
    assert everything[visit].title == "Room 12, grade 3 math"
    assert everything[walk].title == "Lunchroom, 1st seating"
    assert (everything[team].kind, everything[team].title) == ("team", json.loads(template("team"))["name"])
    assert everything[plain].kind is None
    assert everything[plain].title is None
    assert all(s.status.state == State.LOCAL_ONLY for s in everything.values())

    observations = a.list("observation")
    assert {(s.url, s.title) for s in observations} == {
        (visit, "Room 12, grade 3 math"),
        (walk, "Lunchroom, 1st seating"),
    }
    assert [s.url for s in a.list("team")] == [team]
    assert a.list("work-plan") == []

    a.set(visit, "title", '"Room 12, grade 3 math (fractions)"')
    assert {s.url: s.title for s in a.list("observation")}[visit] == "Room 12, grade 3 math (fractions)"

    server = start_server()
    a.set_server(server.url)
    assert sync(a) == coachsync.SyncResult(safe=4, not_safe=[])
    assert a.pending_count() == 0
    assert all(s.status.state == State.SAFE_ON_SERVER for s in a.list(None))
    a.push(walk, "script", entry("w1", "Line at the salad bar moves quickly."))
    # Connected: the edit may already be safe again; it is never lost from the count.
    assert a.pending_count() in (0, 1)
    assert sync(a).not_safe == []
    assert a.pending_count() == 0


def test_closed_device_fails_with_internal_and_its_directory_reopens(tmp_path, open_device):
    a = open_device("a")
    url = a.create("observation", observation("Room 8"))
    a.push(url, "script", entry("c1", "Written before close."))
    with pytest.raises(Err.Storage, match="in use"):
        coachsync.Device(str(tmp_path / "a"), None)
    a.shutdown()
    with pytest.raises(Err.Internal, match="closed"):
        a.get(url)
    with pytest.raises(Err.Internal, match="closed"):
        a.create(None, "{}")

    again = open_device("a")
    assert script_texts(json.loads(again.get(url))) == ["Written before close."]
    assert again.status(url).state == State.LOCAL_ONLY


def test_an_owner_grants_and_revokes_read_access(start_server, open_device):
    server = start_server(secure=True)
    coach_token = server.add_user("coach", "coach")
    client_token = server.add_user("principal", "client")
    coach = open_device("coach", server.url)
    coach.set_token(coach_token)
    client = open_device("principal", server.url)
    client.set_token(client_token)
    url = coach.create(None, json.dumps({"goal": "weekly walkthroughs"}))
    sync(coach)
    # Before a grant the document is not there for the client, as if it did not exist.
    with pytest.raises(coachsync.CoachsyncError.NotFound):
        asyncio.run(client.fetch(url, SYNC_TIMEOUT_MS))
    # Granted: the same device, on the same connection, now gets it.
    asyncio.run(coach.grant(url, "principal", "read"))
    asyncio.run(client.fetch(url, SYNC_TIMEOUT_MS))
    assert json.loads(client.get(url))["goal"] == "weekly walkthroughs"
    # The client cannot pass it on; a bad access word is named.
    with pytest.raises(coachsync.CoachsyncError.InvalidInput):
        asyncio.run(client.grant(url, "coach", "write"))
    with pytest.raises(coachsync.CoachsyncError.InvalidInput, match="read"):
        asyncio.run(coach.grant(url, "principal", "everything"))
    asyncio.run(coach.revoke(url, "principal"))
    with pytest.raises(coachsync.CoachsyncError.InvalidInput):
        asyncio.run(coach.revoke(url, "principal"))  # nothing left to revoke
