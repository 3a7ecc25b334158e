"""The leaderboards' Redis store: one sorted set per window and period, mirroring the ledger.

Knows keys, periods and the score encoding, not who is ranked: the services decide what goes
in, the selectors what a reader sees. Every call goes through the shared pool and its circuit
breaker (`config.redis.redis_call`) and answers None when Redis is absent or down, so the
caller falls back to SQL.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from redis import Redis
from redis.commands.core import Script

from config.redis import redis_call, redis_key

Window = Literal["all", "day", "week", "month"]
WINDOWS: tuple[Window, ...] = ("all", "day", "week", "month")

# A period's board outlives its period by this much, then Redis drops it.
GRACE = timedelta(days=1)

# One score carries the whole board order, read ascending (ZRANGE):
#     score = -points * SLOTS + seconds from EPOCH to when the user reached those points
# More points give a lower score; at equal points an earlier time does. SLOTS (2**30 s, until
# 2054) times points up to 2**23 keeps |score| within 2**53, where a double is exact. Members
# are zero-padded user ids so that Redis's own tie order (bytewise) is the lower id first.
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
SLOTS = 2**30
MEMBER_DIGITS = 12

# Notes a member as written while a rebuild holds its lock; the note lasts as long as the lock.
_WRITTEN = """
local function written(lock, set, member)
  local ttl = redis.call('PTTL', lock)
  if ttl == -2 then return end
  redis.call('SADD', set, member)
  if ttl > 0 then redis.call('PEXPIRE', set, ttl) end
end
"""

# Adds points to members of the board where it is built: a board that is not fully built is
# never written, so it can never look complete. While a rebuild runs (its lock is held) each
# member is also noted as written, for the rebuild to read again before it swaps its board in:
# the rebuild's batches may have read the member before this write committed.
# KEYS: board, its ready marker, the rebuild's lock, the members written during the rebuild.
# ARGV: SLOTS, then member, points, slot of each member in turn.
_INCREMENT = (
    _WRITTEN
    + """
local slots = tonumber(ARGV[1])
local ready = redis.call('EXISTS', KEYS[2]) == 1
for i = 2, #ARGV, 3 do
  if ready then
    local old = redis.call('ZSCORE', KEYS[1], ARGV[i])
    local points = tonumber(ARGV[i + 1])
    if old then points = points - math.floor(tonumber(old) / slots) end
    if points > 0 then
      local score = -points * slots + tonumber(ARGV[i + 2])
      redis.call('ZADD', KEYS[1], string.format('%.17g', score), ARGV[i])
    else
      redis.call('ZREM', KEYS[1], ARGV[i])
    end
  end
  written(KEYS[3], KEYS[4], ARGV[i])
end
return 1
"""
)
# Members moved per call of the script: a batch of re-evaluation moves thousands per board,
# and Redis serves nothing else while a script runs.
INCREMENT_CHUNK = 1000


@dataclass(frozen=True)
class Period:
    """One board: a window and the UTC period it covers (`all` covers every time)."""

    window: Window
    start: datetime | None
    end: datetime | None

    @property
    def label(self) -> str:
        if self.start is None:
            return self.window
        return f"{self.window}:{self.start:%Y-%m-%d}"

    def key(self, suffix: str = "") -> str:
        return redis_key(f"board:{self.label}{suffix}")

    @property
    def expires_at(self) -> datetime | None:
        return None if self.end is None else self.end + GRACE


def period_of(*, window: Window, at: datetime) -> Period:
    """The period of a window containing a time: UTC days, ISO weeks (Monday) and months."""
    at = at.astimezone(UTC)
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if window == "all":
        return Period(window=window, start=None, end=None)
    if window == "day":
        return Period(window=window, start=day, end=day + timedelta(days=1))
    if window == "week":
        monday = day - timedelta(days=day.weekday())
        return Period(window=window, start=monday, end=monday + timedelta(days=7))
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return Period(window=window, start=first, end=following)


def score_encode(*, points: int, reached_at: datetime | None) -> float:
    if reached_at is not None and reached_at.tzinfo is None:
        # A time truncated by PostgreSQL (the SQL period boards) comes back in UTC, zone-less.
        reached_at = reached_at.replace(tzinfo=UTC)
    slot = 0 if reached_at is None else int((reached_at - EPOCH).total_seconds())
    return float(-points * SLOTS + min(max(slot, 0), SLOTS - 1))


def score_points(score: float) -> int:
    return -int(score // SLOTS)


def member(user_id: int) -> str:
    return str(user_id).zfill(MEMBER_DIGITS)


@dataclass(frozen=True)
class Increment:
    period: Period
    user_id: int
    points: int
    reached_at: datetime


def board_increment(*, increments: Iterable[Increment]) -> bool:
    """Move members by points, in order, all in one pipelined round trip: one script call per
    board and chunk of members. False when Redis is away."""
    by_period: dict[Period, list[Increment]] = {}
    for inc in increments:
        by_period.setdefault(inc.period, []).append(inc)

    def run(client: Redis) -> bool:
        script = _script(client, _INCREMENT)
        pipe = client.pipeline(transaction=False)
        for period, moves in by_period.items():
            keys = [
                period.key(),
                period.key(":ready"),
                period.key(":lock"),
                period.key(":written"),
            ]
            for first in range(0, len(moves), INCREMENT_CHUNK):
                args: list[Any] = [SLOTS]
                for inc in moves[first : first + INCREMENT_CHUNK]:
                    slot = int((inc.reached_at - EPOCH).total_seconds())
                    args += [member(inc.user_id), inc.points, min(max(slot, 0), SLOTS - 1)]
                script(keys=keys, args=args, client=pipe)
        pipe.execute()
        return True

    return bool(by_period) and redis_call(run, default=False)


# Puts one member at an exact score on the board where it is built (an empty score: off the
# board), and notes it as written while a rebuild runs.
# KEYS: board, its ready marker, the rebuild's lock, the members written.  ARGV: member, score.
_SET = (
    _WRITTEN
    + """
if redis.call('EXISTS', KEYS[2]) == 1 then
  if ARGV[2] == '' then
    redis.call('ZREM', KEYS[1], ARGV[1])
  else
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  end
end
written(KEYS[3], KEYS[4], ARGV[1])
return 1
"""
)


def board_set(*, periods: Iterable[Period], user_id: int, scores: dict[str, float | None]) -> bool:
    """Put one member at an exact score (None: off the board) on every built board, in one
    pipelined round trip; a rebuild running reads the member again before its swap."""
    periods = list(periods)

    def run(client: Redis) -> bool:
        script = _script(client, _SET)
        pipe = client.pipeline(transaction=False)
        for period in periods:
            score = scores.get(period.label)
            script(
                keys=[
                    period.key(),
                    period.key(":ready"),
                    period.key(":lock"),
                    period.key(":written"),
                ],
                args=[member(user_id), "" if score is None else repr(score)],
                client=pipe,
            )
        pipe.execute()
        return True

    return bool(periods) and redis_call(run, default=False)


@dataclass(frozen=True)
class BoardSlice:
    total: int
    members: list[tuple[int, float]]  # (user id, score) in board order
    first_rank: int  # the competition rank of the first member
    names: dict[int, str] = field(default_factory=dict)  # the public names Redis holds


def _names_key() -> str:
    return redis_key("board:names")


def _names(rows: list, names: list) -> dict[int, str]:
    return {
        int(rows[2 * i]): name.decode() if isinstance(name, bytes) else name
        for i, name in enumerate(names)
        if name is not None
    }


def board_names_set(*, names: dict[int, str | None]) -> None:
    """Keep the players' public names beside the boards (None: forget one), so that a read
    needs no database."""
    named: dict[Any, Any] = {member(pk): name for pk, name in names.items() if name is not None}
    gone = [member(pk) for pk, name in names.items() if name is None]

    def run(client: Redis) -> None:
        pipe = client.pipeline(transaction=False)
        if named:
            pipe.hset(_names_key(), mapping=named)
        if gone:
            pipe.hdel(_names_key(), *gone)
        pipe.execute()

    if names:
        redis_call(run, default=None)


def board_ready(*, period: Period) -> bool | None:
    """Whether the board is fully built; None when Redis cannot say."""
    return redis_call(lambda client: bool(client.exists(period.key(":ready"))), default=None)


# Each read is one round trip, public names included (false for a name the hash lacks); a
# board not fully built answers nothing (false -> None).
_NAMES = """
local function names(rows)
  if #rows == 0 then return {} end
  local members = {}
  for i = 1, #rows, 2 do members[#members + 1] = rows[i] end
  return redis.call('HMGET', KEYS[3], unpack(members))
end
"""

# KEYS: board, ready marker, names.  ARGV: start, stop, SLOTS.
_PAGE = (
    _NAMES
    + """
if redis.call('EXISTS', KEYS[2]) == 0 then return false end
local slots = tonumber(ARGV[3])
local rows = redis.call('ZRANGE', KEYS[1], ARGV[1], ARGV[2], 'WITHSCORES')
local better = 0
if #rows > 0 then
  local band = math.floor(tonumber(rows[2]) / slots) * slots
  better = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. string.format('%.17g', band))
end
return {redis.call('ZCARD', KEYS[1]), better, rows, names(rows)}
"""
)

# KEYS: board, ready marker, names.  ARGV: member, around, SLOTS.
_POSITION = (
    _NAMES
    + """
if redis.call('EXISTS', KEYS[2]) == 0 then return false end
local slots = tonumber(ARGV[3])
local total = redis.call('ZCARD', KEYS[1])
local index = redis.call('ZRANK', KEYS[1], ARGV[1])
if not index then return {total} end
local function better(score)
  local band = math.floor(tonumber(score) / slots) * slots
  return redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. string.format('%.17g', band))
end
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
local start = math.max(index - tonumber(ARGV[2]), 0)
local rows = redis.call('ZRANGE', KEYS[1], start, index + tonumber(ARGV[2]), 'WITHSCORES')
return {total, index, score, better(score), better(rows[2]), rows, names(rows)}
"""
)

_scripts: dict[str, Script] = {}


def _script(client: Redis, source: str) -> Script:
    """One Script per source and process (it runs by SHA, loading itself when Redis lost it)."""
    if source not in _scripts:
        _scripts[source] = client.register_script(source)
    return _scripts[source]


def _members(rows: list) -> list[tuple[int, float]]:
    return [(int(rows[i]), float(rows[i + 1])) for i in range(0, len(rows), 2)]


def board_page(*, period: Period, offset: int, limit: int) -> BoardSlice | None:
    """Members from `offset` in board order; None when the board is not built or Redis away."""

    def run(client: Redis) -> BoardSlice | None:
        found = _script(client, _PAGE)(
            keys=[period.key(), period.key(":ready"), _names_key()],
            args=[offset, offset + limit - 1, SLOTS],
            client=client,
        )
        if found is None:
            return None
        total, better, rows, names = found
        return BoardSlice(
            total=total, members=_members(rows), first_rank=better + 1, names=_names(rows, names)
        )

    return redis_call(run, default=None)


@dataclass(frozen=True)
class BoardPosition:
    total: int
    index: int | None  # the user's 0-based place in board order, None when off the board
    score: float | None
    rank: int | None
    at_or_below: int  # members with no more points than the user's
    around: BoardSlice


def board_position(*, period: Period, user_id: int, around: int) -> BoardPosition | None:
    """A member's place, competition rank and neighbours; None when not built or Redis away."""

    def run(client: Redis) -> BoardPosition | None:
        found = _script(client, _POSITION)(
            keys=[period.key(), period.key(":ready"), _names_key()],
            args=[member(user_id), around, SLOTS],
            client=client,
        )
        if found is None:
            return None
        if len(found) == 1:
            empty = BoardSlice(total=found[0], members=[], first_rank=0)
            return BoardPosition(
                total=found[0], index=None, score=None, rank=None, at_or_below=0, around=empty
            )
        total, index, score, better, first_better, rows, names = found
        run = BoardSlice(
            total=total,
            members=_members(rows),
            first_rank=first_better + 1,
            names=_names(rows, names),
        )
        return BoardPosition(
            total=total,
            index=index,
            score=float(score),
            rank=better + 1,
            at_or_below=total - better,
            around=run,
        )

    return redis_call(run, default=None)


def board_lock(*, period: Period, seconds: int) -> bool | None:
    """Take the right to rebuild a board; None when Redis is away."""
    return redis_call(
        lambda client: bool(client.set(period.key(":lock"), 1, nx=True, ex=seconds)), default=None
    )


def board_unlock(*, period: Period) -> None:
    redis_call(
        lambda client: client.delete(period.key(":lock"), period.key(":written")), default=None
    )


# Claims the rebuild of a board that is not built, in one round trip.
# KEYS: ready marker, claim.  ARGV: seconds.
_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('SET', KEYS[2], 1, 'NX', 'EX', ARGV[1]) then return 1 end
return 0
"""


def board_rebuild_claim(*, period: Period, seconds: int) -> bool | None:
    """True for the one caller that finds the board not built and no rebuild queued for it;
    the claim lasts until released or `seconds`. None when Redis is away."""
    return redis_call(
        lambda client: bool(
            _script(client, _CLAIM)(
                keys=[period.key(":ready"), period.key(":queued")], args=[seconds], client=client
            )
        ),
        default=None,
    )


def board_rebuild_release(*, period: Period) -> None:
    redis_call(lambda client: client.delete(period.key(":queued")), default=None)


def board_build_start(*, period: Period) -> None:
    """Start a rebuild (under its lock): no board being built, no member noted as written."""
    redis_call(
        lambda client: client.unlink(period.key(":build"), period.key(":written")), default=None
    )


def _board_put(*, key: str, scores: Mapping[int, float | None]) -> None:
    placed = {member(pk): s for pk, s in scores.items() if s is not None}
    gone = [member(pk) for pk, s in scores.items() if s is None]

    def run(client: Redis) -> None:
        pipe = client.pipeline(transaction=False)
        if placed:
            pipe.zadd(key, placed)
        if gone:
            pipe.zrem(key, *gone)
        pipe.execute()

    if scores:
        redis_call(run, default=None)


def board_build_add(*, period: Period, scores: Mapping[int, float | None]) -> None:
    """Put members on the board being built at exact scores (None: off it)."""
    _board_put(key=period.key(":build"), scores=scores)


def board_put(*, period: Period, scores: Mapping[int, float | None]) -> None:
    """Put members on the built board at exact scores (None: off it)."""
    _board_put(key=period.key(), scores=scores)


# Swaps the rebuilt board in, marks it built and sets its expiry, atomically, unless members
# were written since the rebuild last took them (then it takes them instead, for the rebuild
# to read them again; with force it swaps all the same and hands them over).
# KEYS: board, ready marker, rebuild's board, members written.  ARGV: expiry (0: none), force.
_FINISH = """
local written = redis.call('SMEMBERS', KEYS[4])
redis.call('DEL', KEYS[4])
if #written > 0 and ARGV[2] == '0' then return {0, written} end
-- UNLINK frees the old board in the background: deleting a million members (which RENAME
-- onto it would do) blocks Redis for everyone for a good part of a second.
redis.call('UNLINK', KEYS[1])
if redis.call('EXISTS', KEYS[3]) == 1 then
  if ARGV[1] ~= '0' then redis.call('EXPIREAT', KEYS[3], ARGV[1]) end
  redis.call('RENAME', KEYS[3], KEYS[1])
end
redis.call('SET', KEYS[2], 1)
if ARGV[1] ~= '0' then redis.call('EXPIREAT', KEYS[2], ARGV[1]) end
return {1, written}
"""


@dataclass(frozen=True)
class BuildFinish:
    swapped: bool
    written: list[int]  # members written since the rebuild last took them


def board_build_finish(*, period: Period, force: bool = False) -> BuildFinish | None:
    """Swap the rebuilt board in unless members were written since they were last taken (with
    force, swap all the same); None when Redis is away."""
    expires = 0 if period.expires_at is None else int(period.expires_at.timestamp())

    def run(client: Redis) -> BuildFinish:
        swapped, written = _script(client, _FINISH)(
            keys=[period.key(), period.key(":ready"), period.key(":build"), period.key(":written")],
            args=[expires, int(force)],
            client=client,
        )
        return BuildFinish(swapped=bool(swapped), written=sorted(int(m) for m in written))

    return redis_call(run, default=None)


def board_size(*, period: Period) -> int | None:
    return redis_call(lambda client: int(client.zcard(period.key())), default=None)


def board_forget(*, period: Period) -> None:
    """Drop a board and its marker (the next read rebuilds it)."""
    redis_call(
        lambda client: client.unlink(period.key(), period.key(":ready"), period.key(":build")),
        default=None,
    )


def board_memory(*, period: Period) -> int | None:
    """Bytes Redis uses for a board."""
    return redis_call(lambda client: client.memory_usage(period.key(), samples=0), default=None)


def board_names_memory() -> tuple[int, int] | None:
    """Bytes Redis uses for the public names kept beside the boards, and how many it holds."""
    return redis_call(
        lambda client: (
            client.memory_usage(_names_key(), samples=0) or 0,
            int(client.hlen(_names_key())),
        ),
        default=None,
    )
