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


def test_ids_keep_their_randomness_across_the_pool_and_a_fork():
    import os

    # More ids than one pool of random bytes holds: the random part never repeats.
    ids = [uuid7(1_700_000_000_000) for _ in range(2_000)]
    assert len({i.int & ((1 << 62) - 1) for i in ids}) == len(ids)

    read, write = os.pipe()
    parent_next = None
    pid = os.fork()
    if pid == 0:  # the child reports the id it makes next, then leaves at once
        os.close(read)
        os.write(write, uuid7(1_700_000_000_000).bytes)
        os._exit(0)
    os.close(write)
    parent_next = uuid7(1_700_000_000_000)
    child_next = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)

    assert len(child_next) == 16
    assert child_next != parent_next.bytes  # the child did not draw the parent's bits
