"""The local SQS stand-in: partial batch failures, redelivery, dead letters, and nothing lost across restarts."""

import json

from photo_organizer.local_stack.queue import LocalEventQueue


def handler_failing(ids_to_fail: set[str], seen: list[str]):
    def handler(event, context):
        failures = []
        for record in event["Records"]:
            name = json.loads(record["body"])["name"]
            seen.append(name)
            if name in ids_to_fail:
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    return handler


def test_only_failed_records_come_back_and_poison_ends_in_the_dead_letter_table(tmp_path):
    seen: list[str] = []
    queue = LocalEventQueue(tmp_path / "q.sqlite3", handler_failing({"poison"}, seen), max_receives=3, visibility_seconds=0)
    for name in ("a", "poison", "b"):
        queue.send({"name": name})
    while queue.run_once():
        pass
    assert seen.count("a") == 1 and seen.count("b") == 1
    assert seen.count("poison") == 3
    assert [json.loads(d["body"])["name"] for d in queue.dead_letters()] == ["poison"]
    assert queue.depth() == 0


def test_unacknowledged_messages_survive_a_restart(tmp_path):
    path = tmp_path / "q.sqlite3"
    LocalEventQueue(path, handler_failing(set(), [])).send({"name": "pending"})
    seen: list[str] = []
    restarted = LocalEventQueue(path, handler_failing(set(), seen))
    restarted.run_once()
    assert seen == ["pending"] and restarted.depth() == 0


def test_a_crashing_invocation_makes_the_whole_batch_visible_again(tmp_path):
    calls = []

    def crashing(event, context):
        calls.append(len(event["Records"]))
        raise RuntimeError("out of memory")

    queue = LocalEventQueue(tmp_path / "q.sqlite3", crashing, max_receives=2, visibility_seconds=0)
    queue.send({"name": "x"})
    while queue.run_once():
        pass
    assert calls == [1, 1] and len(queue.dead_letters()) == 1


def test_a_batch_in_flight_is_not_received_again_by_another_consumer(tmp_path):
    """Two consumers (ingest worker processes): the retry delay after a failure is short, but a batch still being
    handled stays invisible until its handler returns (SQS's visibility timeout exceeds the function timeout)."""
    import threading

    seen: list[str] = []
    release = threading.Event()

    def slow(event, context):
        for record in event["Records"]:
            seen.append(json.loads(record["body"])["name"])
        release.wait(5)  # held in flight until the other consumer had every chance to receive it again
        return {"batchItemFailures": []}

    queue = LocalEventQueue(tmp_path / "q.sqlite3", slow, batch_size=1, visibility_seconds=0.01, poll_seconds=0.01,
                            consumers=2)
    queue.send({"name": "a"})
    queue.start()
    try:
        threading.Event().wait(0.5)
        release.set()
        assert queue.wait_until_empty(timeout=30)
    finally:
        queue.stop()
    assert seen == ["a"]


def test_a_starting_queue_takes_back_what_a_crashed_process_held_in_flight(tmp_path):
    path = tmp_path / "q.sqlite3"
    crashed = LocalEventQueue(path, handler_failing(set(), []))
    crashed.send({"name": "held"})
    assert crashed._receive()  # received, then the process died before acknowledging
    seen: list[str] = []
    restarted = LocalEventQueue(path, handler_failing(set(), seen), poll_seconds=0.01)
    restarted.start()
    try:
        assert restarted.wait_until_empty(timeout=30)
    finally:
        restarted.stop()
    assert seen == ["held"]
