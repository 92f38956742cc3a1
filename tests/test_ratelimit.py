"""The shared per-sender rate limiter, against the real Redis (db 15)."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid

import pytest
import redis

from bot.ratelimit import DEFAULT_LIMITS, RateLimiter, SenderLimit, Throttled

RATE = 100
BURST = 10
#: Acquisitions measured after the initial burst: three seconds' worth at RATE.
MEASURED = 3 * RATE


@pytest.fixture
def client(redis_url):
    conn = redis.Redis.from_url(redis_url)
    yield conn
    conn.close()


@pytest.fixture
def limiter(client):
    # A fresh prefix per test: nothing left over can lend or borrow budget.
    return RateLimiter(client, key_prefix=f"test-rate:{uuid.uuid4().hex}")


# -- the budget ----------------------------------------------------------------------------


def test_a_cost_of_three_segments_takes_three_units(limiter):
    # 1 unit a second, 5 at most: 3 + 2 fit, then the bucket is empty for about a second.
    assert limiter.acquire("+15550001", 3, rate_per_s=1, burst=5) == 0.0
    wait = limiter.acquire("+15550001", 3, rate_per_s=1, burst=5)
    assert 0.9 < wait <= 1.0  # one unit short
    assert limiter.acquire("+15550001", 2, rate_per_s=1, burst=5) == 0.0
    wait = limiter.acquire("+15550001", 1, rate_per_s=1, burst=5)
    assert 0.9 < wait <= 1.0


def test_refused_requests_spend_nothing(limiter):
    assert limiter.acquire("s", 5, rate_per_s=1, burst=5) == 0.0
    waits = [limiter.acquire("s", 1, rate_per_s=1, burst=5) for _ in range(20)]
    assert all(0.8 < w <= 1.0 for w in waits)
    assert waits == sorted(waits, reverse=True)  # only time passing changes the answer


def test_separate_senders_do_not_share_a_budget(limiter):
    assert limiter.acquire("+15550001", 2, rate_per_s=1, burst=2) == 0.0
    assert limiter.acquire("+15550001", 1, rate_per_s=1, burst=2) > 0
    assert limiter.acquire("+15550002", 2, rate_per_s=1, burst=2) == 0.0


def test_separate_prefixes_do_not_share_a_budget(client):
    one = RateLimiter(client, key_prefix=f"a-{uuid.uuid4().hex}")
    two = RateLimiter(client, key_prefix=f"b-{uuid.uuid4().hex}")
    assert one.acquire("s", 1, rate_per_s=1, burst=1) == 0.0
    assert one.acquire("s", 1, rate_per_s=1, burst=1) > 0
    assert two.acquire("s", 1, rate_per_s=1, burst=1) == 0.0


def test_a_message_longer_than_the_burst_goes_and_leaves_a_debt(limiter):
    # A 5-segment message on a 1/s sender with a burst of 2 is not stuck forever...
    assert limiter.acquire("s", 5, rate_per_s=1, burst=2) == 0.0
    # ...but the next segment waits until the 5 segments are paid for, less the burst.
    wait = limiter.acquire("s", 1, rate_per_s=1, burst=2)
    assert 3.9 < wait <= 4.0


def test_sender_keys_expire_once_the_bucket_is_full_again(client, limiter):
    limiter.acquire("s", 3, rate_per_s=10, burst=5)  # 300 ms of budget
    ttl = client.pttl(limiter.key("s"))
    assert 0 < ttl <= 302


def test_a_long_idle_sender_saves_up_no_more_than_its_burst(client, limiter):
    # Keys expire once full; a key that somehow outlived that must not hold extra budget.
    client.set(limiter.key("s"), "1000")  # a TAT in 1970
    assert [limiter.acquire("s", rate_per_s=1, burst=3) for _ in range(3)] == [0.0] * 3
    assert limiter.acquire("s", rate_per_s=1, burst=3) > 0


@pytest.mark.parametrize(
    ("cost", "rate", "burst", "words"),
    [(0, 1, 1, "at least 1 unit"), (1, 0, 1, "above 0 per second"),
     (1, -5, 1, "above 0 per second"), (1, 1, 0, "burst must be at least 1")],
)
def test_nonsense_limits_are_refused(limiter, cost, rate, burst, words):
    with pytest.raises(ValueError, match=words):
        limiter.acquire("s", cost, rate_per_s=rate, burst=burst)


# -- sender kinds --------------------------------------------------------------------------


def test_default_sender_kinds_follow_twilio():
    assert {k: v.rate_per_s for k, v in DEFAULT_LIMITS.items()} == {
        "long_code": 1, "toll_free": 3, "short_code": 100, "whatsapp": 80}
    assert DEFAULT_LIMITS["whatsapp"].per_message
    assert not DEFAULT_LIMITS["long_code"].per_message


def test_whatsapp_counts_messages_not_segments(limiter):
    burst = limiter.limit_for("whatsapp").burst
    for _ in range(burst):
        assert limiter.acquire_for("whatsapp", "whatsapp:+15550001", segments=10) == 0.0
    assert limiter.acquire_for("whatsapp", "whatsapp:+15550001", segments=1) > 0


def test_sms_senders_count_segments(client):
    limiter = RateLimiter(client, key_prefix=f"test-rate:{uuid.uuid4().hex}",
                          limits={"long_code": SenderLimit(rate_per_s=1, burst=3)})
    assert limiter.acquire_for("long_code", "+15550001", segments=3) == 0.0
    assert 0.9 < limiter.acquire_for("long_code", "+15550001", segments=1) <= 1.0


def test_limits_are_configurable_per_kind(client):
    limiter = RateLimiter(client, limits={"short_code": SenderLimit(rate_per_s=50, burst=5),
                                          "alphanumeric": SenderLimit(rate_per_s=10, burst=1)})
    assert limiter.limit_for("short_code").rate_per_s == 50
    assert limiter.limit_for("alphanumeric").burst == 1
    assert limiter.limit_for("toll_free") == DEFAULT_LIMITS["toll_free"]
    with pytest.raises(ValueError, match="no rate limit for sender kind `pager`; known: "):
        limiter.limit_for("pager")


# -- waiting -------------------------------------------------------------------------------


def test_wait_for_sleeps_until_the_units_are_free(limiter):
    assert limiter.wait_for("s", rate_per_s=20, burst=1, max_wait=1) == pytest.approx(0, abs=0.05)
    spent = limiter.wait_for("s", rate_per_s=20, burst=1, max_wait=1)
    assert 0.03 < spent < 0.5  # about one 50 ms interval
    assert limiter.acquire("s", rate_per_s=20, burst=1) > 0  # that wait took the slot


def test_wait_for_gives_up_at_once_when_the_wait_is_too_long(client):
    def no_sleep(seconds: float) -> None:
        raise AssertionError(f"slept {seconds} s instead of giving up")

    limiter = RateLimiter(client, key_prefix=f"test-rate:{uuid.uuid4().hex}", sleep=no_sleep)
    limiter.wait_for("s", rate_per_s=1, burst=1, max_wait=0.5)
    with pytest.raises(Throttled) as caught:
        limiter.wait_for("s", rate_per_s=1, burst=1, max_wait=0.5)
    assert 0.9 < caught.value.retry_after <= 1.0
    assert caught.value.sender_key == "s"


def test_wait_for_kind_uses_the_kind_limits(client):
    limiter = RateLimiter(client, key_prefix=f"test-rate:{uuid.uuid4().hex}",
                          limits={"toll_free": SenderLimit(rate_per_s=3, burst=1)})
    limiter.wait_for_kind("toll_free", "+18005550001", segments=1, max_wait=0.1)
    with pytest.raises(Throttled):
        limiter.wait_for_kind("toll_free", "+18005550001", segments=2, max_wait=0.1)


# -- many workers, one budget --------------------------------------------------------------


def _compete(redis_url: str, prefix: str, ready, go, counter, stamps, total: int) -> None:
    """Take units as fast as the limiter allows until `total` have been taken in all.

    Successes are counted on a shared counter and timestamped, so the test measures the
    achieved rate over a fixed number of acquisitions. Only the limiter itself uses Redis.
    """
    conn = redis.Redis.from_url(redis_url)
    limiter = RateLimiter(conn, key_prefix=prefix)
    mine: list[float] = []
    try:
        limiter.acquire("warm-up", rate_per_s=RATE, burst=BURST)  # connect, load the script
        ready.release()
        go.wait(30)
        deadline = time.monotonic() + 20  # never spin forever if something goes wrong
        while counter.value < total and time.monotonic() < deadline:
            wait = limiter.acquire("shared", rate_per_s=RATE, burst=BURST)
            if wait:
                time.sleep(wait)
                continue
            stamp = time.time()
            with counter.get_lock():
                counter.value += 1
                counted = counter.value <= total
            if counted:
                mine.append(stamp)
    finally:
        stamps.put((multiprocessing.current_process().name, mine))
        conn.close()


def _race(redis_url: str) -> list[tuple[str, list[float]]]:
    """Six competitors (4 threads here, 2 processes) take BURST + MEASURED + 1 units."""
    prefix = f"test-rate:{uuid.uuid4().hex}"
    total = BURST + MEASURED + 1
    # spawn, not fork: the children start clean, as RQ workers on other machines would.
    ctx = multiprocessing.get_context("spawn")
    ready, go, counter, stamps = ctx.Semaphore(0), ctx.Event(), ctx.Value("i", 0), ctx.Queue()
    args = (redis_url, prefix, ready, go, counter, stamps, total)
    procs = [ctx.Process(target=_compete, args=args, name=f"proc{i}") for i in range(2)]
    threads = [threading.Thread(target=_compete, args=args) for _ in range(4)]
    try:
        for worker in (*procs, *threads):
            worker.start()
        # Start together, once every competitor (children import first) is connected.
        assert all(ready.acquire(timeout=30) for _ in range(len(procs) + len(threads)))
        go.set()
        results = [stamps.get(timeout=30) for _ in range(len(procs) + len(threads))]
        for worker in (*procs, *threads):
            worker.join(timeout=10)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
    assert all(p.exitcode == 0 for p in procs)
    assert sum(len(mine) for _, mine in results) == total
    return results


def test_workers_in_threads_and_processes_share_one_rate(client, redis_url):
    # A FLUSHDB from another client mid-race (another test run sharing the test db) empties
    # the bucket and spoils the figure: detect it with a sentinel key and race again.
    for _attempt in range(3):
        sentinel = f"test-sentinel:{uuid.uuid4().hex}"
        client.set(sentinel, 1)
        results = _race(redis_url)
        if client.exists(sentinel):
            break
    else:
        pytest.fail("the test Redis db was flushed by another client during every attempt; "
                    "run alone or point TEST_REDIS_URL at a db of its own")

    stamps = sorted(stamp for _, mine in results for stamp in mine)
    # The first BURST go at once; from the next one on, each waits one interval.
    measured = stamps[BURST:]
    rate = (len(measured) - 1) / (measured[-1] - measured[0])
    print(f"achieved {rate:.2f}/s over {len(measured)} acquisitions")
    assert RATE * 0.95 <= rate <= RATE * 1.05, f"achieved {rate:.1f}/s"
    # Every process got a share: they really competed for one budget.
    assert {name for name, mine in results if mine} >= {"proc0", "proc1", "MainProcess"}
