"""Call stages in the store (SQLite and PostgreSQL): stage rows, copied initial messages, per-stage indexes, modes."""

from __future__ import annotations

import uuid

import pytest

from tests.store.test_repository import call
from voxcall.errors import NotFound
from voxcall.protocol.rest import CallMessage, first_stage_id
from voxcall.store import Store


def user(text: str, stage: str | None = None) -> CallMessage:
    return CallMessage(role="MESSAGE_ROLE_USER", text=text, call_stage_id=stage)


async def test_a_call_starts_with_its_first_stage(store: Store) -> None:
    record = call("a")
    await store.create_call(record)
    stages, after, before, total = await store.stages.list_stages(record.call_id)
    assert [s.call_stage_id for s in stages] == [first_stage_id(record.call_id)] and (after, before, total) == (None, None, 1)
    assert stages[0].settings == {} and stages[0].tools is None and stages[0].created == record.created
    assert (await store.stages.get(record.call_id, first_stage_id(record.call_id))).seq == 0


async def test_a_new_stage_copies_the_history_and_counts_its_own_indexes(store: Store) -> None:
    record = call("a")
    await store.create_call(record)
    await store.add_messages(record.call_id, [user("initial")], initial=True)
    first = first_stage_id(record.call_id)
    stored = [await store.add_message(record.call_id, user(t, first)) for t in ("one", "two")]
    assert [(m.call_stage_message_index, m.call_stage_id) for m in stored] == [(1, first), (2, first)]
    two = str(uuid.uuid4())
    await store.stages.add(record.call_id, two, settings={"systemPrompt": "Two."}, tools=[{"name": "t"}], initial=None)
    after = await store.add_message(record.call_id, user("three", two))
    assert (after.call_stage_message_index, after.call_stage_id) == (3, two)

    last, _, _, total = await store.list_messages(record.call_id)  # mode=last_stage by default
    assert [(m.text, m.call_stage_message_index, m.call_stage_id) for m in last] == [
        ("initial", 0, two), ("one", 1, two), ("two", 2, two), ("three", 3, two)] and total == 4
    in_call, _, _, total = await store.list_messages(record.call_id, mode="in_call")
    assert [(m.text, m.call_stage_id) for m in in_call] == [("one", first), ("two", first), ("three", two)] and total == 3
    of_first, _, _, _ = await store.list_messages(record.call_id, stage_id=first)
    assert [m.text for m in of_first] == ["initial", "one", "two"]
    assert [m.text for m in await store.all_messages(record.call_id)] == ["initial", "one", "two", "three"]

    stages, _, _, total = await store.stages.list_stages(record.call_id)
    assert [s.call_stage_id for s in stages] == [first, two] and total == 2
    assert stages[1].settings == {"systemPrompt": "Two."} and stages[1].tools == [{"name": "t"}]


async def test_given_initial_messages_replace_the_copy_and_tools_are_inherited(store: Store) -> None:
    record = call("a")
    await store.create_call(record)
    await store.add_message(record.call_id, user("old"))
    two, three = str(uuid.uuid4()), str(uuid.uuid4())
    await store.stages.add(record.call_id, two, settings={}, tools=[{"name": "x"}], initial=[user("fresh")])
    await store.stages.add(record.call_id, three, settings={"temperature": 0.2}, tools=None, initial=[])
    assert [m.text for m in (await store.list_messages(record.call_id, stage_id=two))[0]] == ["fresh"]
    assert (await store.list_messages(record.call_id))[3] == 0  # the last stage starts empty
    assert [m.text for m in (await store.list_messages(record.call_id, mode="in_call"))[0]] == ["old"]
    assert (await store.stages.get(record.call_id, three)).tools == [{"name": "x"}]
    page, nxt, _, total = await store.stages.list_stages(record.call_id, page_size=2)
    rest, end, _, _ = await store.stages.list_stages(record.call_id, cursor=nxt)
    assert [s.seq for s in page + rest] == [0, 1, 2] and total == 3 and end is None


async def test_stages_of_unknown_calls_and_other_calls_are_not_found(store: Store) -> None:
    mine, other = call("a"), call("a")
    for record in (mine, other):
        await store.create_call(record)
    with pytest.raises(NotFound):
        await store.stages.get(mine.call_id, first_stage_id(other.call_id))
    for call_id in (str(uuid.uuid4()), "not-a-uuid"):
        with pytest.raises(NotFound):
            await store.stages.list_stages(call_id)
        with pytest.raises(NotFound):
            await store.stages.add(call_id, str(uuid.uuid4()), settings={}, tools=None, initial=None)


async def test_error_count_counts_failed_tool_results_of_the_stage(store: Store) -> None:
    record = call("a")
    await store.create_call(record)
    failed = CallMessage(role="MESSAGE_ROLE_TOOL_RESULT", text="no", invocation_id="i", tool_name="t", error_details="HTTP 500")
    await store.add_message(record.call_id, failed)
    two = str(uuid.uuid4())
    await store.stages.add(record.call_id, two, settings={}, tools=None, initial=None)
    first = await store.stages.get(record.call_id, first_stage_id(record.call_id))
    assert first.error_count == 1 and (await store.stages.get(record.call_id, two)).error_count == 0  # copies do not count


async def test_events_carry_their_stage(store: Store) -> None:
    record = call("a")
    await store.create_call(record)
    two = str(uuid.uuid4())
    await store.add_event(record.call_id, type="a", text="first")
    await store.add_event(record.call_id, type="b", text="second", call_stage_id=two)
    events, _, _, _ = await store.list_events(record.call_id)
    assert [e.call_stage_id for e in events] == [first_stage_id(record.call_id), two]


async def test_call_records_carry_what_their_last_stage_changed(store: Store) -> None:
    moved, stayed = call("a", tools=[{"name": "first"}]), call("a")
    for record in (moved, stayed):
        await store.create_call(record)
    two, three = str(uuid.uuid4()), str(uuid.uuid4())
    await store.stages.add(moved.call_id, two, settings={"systemPrompt": "Two."}, tools=[{"name": "t2"}], initial=[])
    await store.stages.add(moved.call_id, three, settings={"systemPrompt": "Two.", "voice": "v"}, tools=None, initial=[])
    got = await store.get_call(moved.call_id, "a")
    assert got.request == {"systemPrompt": "hi"} and got.tools == [{"name": "first"}]  # as created
    assert got.stage_settings == {"systemPrompt": "Two.", "voice": "v"} and got.stage_tools == [{"name": "t2"}]
    assert got.latest_request() == {"systemPrompt": "Two.", "voice": "v"} and got.latest_tools() == [{"name": "t2"}]
    listed = {r.call_id: r for r in (await store.list_calls("a"))[0]}
    opened = {r.call_id: r for r in await store.list_open_calls("a")}
    for records in (listed, opened):
        assert records[moved.call_id].stage_settings == got.stage_settings
        assert records[stayed.call_id].stage_settings == {} and records[stayed.call_id].stage_tools is None
        assert records[stayed.call_id].latest_request() == {"systemPrompt": "hi"}


async def test_token_counts_keep_the_first_and_the_latest_of_each_stage(store: Store) -> None:
    record = call("a")
    await store.create_call(record)
    first, two = first_stage_id(record.call_id), str(uuid.uuid4())
    await store.stages.count_tokens(record.call_id, first, 120)
    await store.stages.count_tokens(record.call_id, first, 180)
    await store.stages.add(record.call_id, two, settings={}, tools=None, initial=[])
    await store.stages.count_tokens(record.call_id, two, 90)
    await store.stages.count_tokens(record.call_id, str(uuid.uuid4()), 5)  # no such stage: nothing happens
    stages, _, _, _ = await store.stages.list_stages(record.call_id)
    assert [(s.initial_token_count, s.latest_token_count) for s in stages] == [(120, 180), (90, 90)]
    other = call("a")
    await store.create_call(other)
    await store.stages.count_tokens(other.call_id, two, 7)  # another call's stage id is not this call's
    assert (await store.stages.get(record.call_id, two)).latest_token_count == 90
    fresh = await store.stages.get(other.call_id, first_stage_id(other.call_id))
    assert (fresh.initial_token_count, fresh.latest_token_count) == (None, None)
