"""Leader election on the fake API: one leader, takeover only after the lease duration, release."""

from __future__ import annotations

import asyncio

import pytest

from swell import errors
from swell.clusters.kubernetes import fake, lease


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def elector(api: fake.FakeApi, who: str, clock: Clock) -> lease.Elector:
    s = lease.Settings(
        namespace="sys", identity=who, lease_duration_s=15, renew_deadline_s=10, retry_period_s=2
    )
    return lease.Elector(api, s, monotonic=clock, wall=clock)


async def test_two_candidates_one_leader(api: fake.FakeApi) -> None:
    clock = Clock()
    a, b = elector(api, "a", clock), elector(api, "b", clock)
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    assert a.is_leader and not b.is_leader and b.holder == "a"
    spec = api.leases[("sys", "swell-controller")]["spec"]
    assert spec["holderIdentity"] == "a" and spec["leaseDurationSeconds"] == 15


async def test_takeover_only_after_the_lease_stopped_changing_for_its_duration(api: fake.FakeApi) -> None:
    clock = Clock()
    a, b = elector(api, "a", clock), elector(api, "b", clock)
    await a.try_acquire_or_renew()
    await b.try_acquire_or_renew()
    clock.t += 9
    assert a.is_leader  # within the renew deadline without renewing
    clock.t += 2
    assert not a.is_leader  # past it: a stops acting before b may start
    clock.t += 3  # 14 s after b first saw the record
    assert not await b.try_acquire_or_renew()
    clock.t += 2
    assert await b.try_acquire_or_renew()
    assert api.leases[("sys", "swell-controller")]["spec"]["leaseTransitions"] == 1
    assert not await a.try_acquire_or_renew()  # the old leader sees b and stays out


async def test_a_renewing_leader_keeps_the_lease(api: fake.FakeApi) -> None:
    clock = Clock()
    a, b = elector(api, "a", clock), elector(api, "b", clock)
    for _ in range(20):
        assert await a.try_acquire_or_renew()
        assert not await b.try_acquire_or_renew()
        clock.t += 2


async def test_racing_candidates_one_wins_the_write(api: fake.FakeApi) -> None:
    clock = Clock()
    a, b, c = elector(api, "a", clock), elector(api, "b", clock), elector(api, "c", clock)
    await c.try_acquire_or_renew()
    await c.release()  # a free lease: both read the same resourceVersion, then both write
    won = await asyncio.gather(a.try_acquire_or_renew(), b.try_acquire_or_renew())
    assert sorted(won) == [False, True]
    assert api.leases[("sys", "swell-controller")]["spec"]["holderIdentity"] == ("a" if won[0] else "b")


async def test_release_hands_over_at_once(api: fake.FakeApi) -> None:
    clock = Clock()
    a, b = elector(api, "a", clock), elector(api, "b", clock)
    await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    await a.release()
    assert not a.is_leader
    assert await b.try_acquire_or_renew()


async def test_api_errors_keep_the_leader_until_the_deadline(api: fake.FakeApi) -> None:
    clock = Clock()
    a = elector(api, "a", clock)
    await a.try_acquire_or_renew()
    clock.t += 2
    api.fail("get_lease", 503, 503, 503, 503, 503, 503)
    assert await a.try_acquire_or_renew()
    clock.t += 9
    assert not await a.try_acquire_or_renew()


async def test_create_race_lost_with_409(api: fake.FakeApi) -> None:
    api.fail("create_lease", 409)
    assert not await elector(api, "a", Clock()).try_acquire_or_renew()


def test_durations_must_nest() -> None:
    with pytest.raises(errors.ClusterError, match="retry period < renew deadline < lease duration"):
        lease.Settings(namespace="x", identity="a", lease_duration_s=5, renew_deadline_s=5, retry_period_s=1)
