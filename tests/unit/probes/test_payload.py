"""The payload probe's search (pure): the cap first, then doubling from 1 KiB below the smallest
failure, then bisecting; never above the cap; stopped by a message that got no answer."""

from __future__ import annotations

from kiloscribe_lab.probes.payload import PAYLOAD_EVENT, START_BYTES, _Search, overhead_bytes
from kiloscribe_lab.probes.sessions import CHECK_NAMESPACE
from kiloscribe_lab.settings import DEFAULT_FILE_SIZE, inscription_message_bytes

CAP = inscription_message_bytes(DEFAULT_FILE_SIZE)


def run(limit: int, cap: int = CAP, floor: int = 40) -> tuple[list[int], _Search]:
    """The sizes the search tries against a server that takes messages up to ``limit`` bytes."""
    search, tried = _Search(cap), []
    while (size := search.next_size(floor)) is not None:
        assert len(tried) < 64, tried  # the search ends
        search.tried.add(size)
        tried.append(size)
        if size <= limit:
            search.largest_passed = max(size, search.largest_passed or 0)
        elif search.smallest_failed is None or size < search.smallest_failed:
            search.smallest_failed = size
    return tried, search


def test_a_server_without_a_low_limit_is_settled_by_one_message_the_cap() -> None:
    tried, search = run(limit=1_000_000)
    assert tried == [CAP] and search.largest_passed == CAP and search.smallest_failed is None


def test_a_64_kib_limit_is_found_exactly_without_sending_above_the_cap() -> None:
    tried, search = run(limit=65_536)
    assert tried[0] == CAP and tried[1] == START_BYTES
    assert tried[1:8] == [1024 * 2**i for i in range(7)]  # doubling up to 64 KiB
    assert (search.largest_passed, search.smallest_failed) == (65_536, 65_537)
    assert max(tried) <= CAP and len(tried) == len(set(tried))


def test_a_limit_below_the_first_step_starts_at_the_floor() -> None:
    tried, search = run(limit=100, floor=40)
    assert (search.largest_passed, search.smallest_failed) == (100, 101)
    assert min(tried) >= 40


def test_a_message_with_no_answer_ends_the_search() -> None:
    search = _Search(CAP)
    search.smallest_failed = CAP
    search.inconclusive = "no answer within 3 s after a message of 1024 bytes"
    assert search.next_size(40) is None


def test_the_sized_message_is_an_event_no_application_handles_never_start_inscription() -> None:
    assert PAYLOAD_EVENT == "kiloscribe-lab-payload" and "inscription" not in PAYLOAD_EVENT
    assert CHECK_NAMESPACE == "/kiloscribe-lab-check"
    # 42["kiloscribe-lab-payload",""] as an Engine.IO MESSAGE: "4" + "2" + the JSON array.
    assert overhead_bytes(True) == len('42["kiloscribe-lab-payload",""]')
    assert overhead_bytes(False) == len('40/kiloscribe-lab-check,{"pad":""}')
