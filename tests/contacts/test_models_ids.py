from __future__ import annotations

from contacts.ids import uuid7


def test_ids_made_now_are_unique_version_7_and_in_creation_order():
    ids = [uuid7() for _ in range(20_000)]  # many share a millisecond

    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert {i.version for i in ids} == {7}
    assert {i.variant for i in ids} == {"specified in RFC 4122"}


def test_an_id_for_a_given_time_carries_that_time():
    assert uuid7(1_700_000_000_123).int >> 80 == 1_700_000_000_123
