"""Server-side login records: tokens and profile, encrypted, versioned, written by compare-and-set.

The session only holds an opaque random reference; the record itself lives here under
``<prefix>login:{<name>}``, where ``<name>`` is a keyed digest of the reference
(:class:`~flask_wikimedia.crypto.KeyNamer`): a neighbour who reads every key name on a shared
Redis learns no reference (DESIGN invariant 11). Every write after creation is a compare-and-set
on a version number, so a request that read the record before a refresh or a logout can never
write old tokens back or bring a deleted login back to life (DESIGN invariants 3 and 4).
Refreshes are single-flight under a short lock, ``<prefix>lock:{<name>}``.

A login started on :class:`~flask_wikimedia.sessions.SafeRedisSessionInterface` is bound to its
session id (which rotates at every login): its reference is :func:`session_reference` of the id,
and ``<name>`` is the session key's own digest. Both key names are then computable from the
cookie alone and share one hash tag (one Redis Cluster slot), so the session interface reads the
session and the record in one script, one round trip (issue 12). Any other session (Flask's
signed cookie) gets a random reference, as before.

Reading a record does no repeated work: a bounded in-process cache, keyed by the record's key,
version, deadline and a digest of its sealed value, holds what a page needs (the user, the token
deadline and the profile's age; never a token). Redis is read on every request to validate it,
so a change made by any other process is seen at once (DESIGN invariant 10). Tokens are
decrypted only when a request asks for them (:attr:`VersionedRecord.record`).

Ending a login deletes the record and leaves a tombstone, ``<prefix>gone:{<name>}``, that lives
as long as the record could have: a neighbour who dumped the record while the user was logged in
and writes it back after the logout finds it refused (the tombstone was not in the dump). Each
sealed value carries its own deadline (authenticated), so a record written back without a TTL
is dead by the time its tombstone expires. The three names of one login share a hash tag, so
they sit in one Redis Cluster slot.

Redis trouble of any kind becomes :class:`~flask_wikimedia.errors.StoreUnavailable` (a 503),
and anything we cannot decrypt is treated as absent: planted or corrupted values log the user
out, nothing worse.

Why one module of this size: the record format, its sealing, the compare-and-set and lock
scripts and the read cache are one contract with Redis (invariants 3, 4, 10, 11); the two stores
(Redis, in-process) implement it side by side.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import secrets
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import redis
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.exceptions import RedisClusterException

from .crypto import KeyNamer, Sealer
from .errors import StoreUnavailable
from .user import ProfileError, WikimediaUser

log = logging.getLogger("flask_wikimedia.store")

#: The clients a store or session interface takes: one server's (a Sentinel-managed client from
#: ``Sentinel.master_for`` is one too) or a Redis Cluster's.
RedisClient = redis.Redis | RedisCluster
#: What a Redis client raises when Redis is in trouble: a cluster client's own exceptions (no
#: node serves a slot, say) do not derive from ``RedisError``.
REDIS_TROUBLE: tuple[type[Exception], ...] = (redis.RedisError, RedisClusterException)


@dataclass(frozen=True)
class Durability:
    """``WAIT`` for replicas after the writes that start, refresh or end a login.

    Redis replicates asynchronously: a primary that dies loses what it acknowledged and had not
    yet sent on, and a failover can undo a login, a refresh or a logout made in its last moment
    (docs/scaling.md). With ``replicas`` > 0 those writes are followed, on the same connection,
    by ``WAIT replicas timeout_ms``: the request returns once that many replicas have them, or
    after the timeout with a warning (the write stands; it is just not known to be replicated).
    Ordinary requests never wait. Set with ``WIKIMEDIA_REDIS_WAIT_REPLICAS`` and
    ``WIKIMEDIA_REDIS_WAIT_TIMEOUT`` (milliseconds; parsed in ``flask_wikimedia.settings``);
    not available on a Redis Cluster.
    """

    replicas: int = 0
    timeout_ms: int = 100

    def add_to(self, pipe: Any) -> bool:
        """Append the ``WAIT`` to a pipeline (True), or nothing when it is off (False)."""
        if self.replicas <= 0:
            return False
        pipe.execute_command("WAIT", self.replicas, self.timeout_ms)
        return True

    def check(self, acknowledged: object, what: str) -> None:
        if isinstance(acknowledged, int) and acknowledged < self.replicas:
            log.warning(
                "%s reached %d of %d replicas within %d ms (WIKIMEDIA_REDIS_WAIT_REPLICAS): "
                "a failover now could undo it",
                what,
                acknowledged,
                self.replicas,
                self.timeout_ms,
            )


def wrong_type(error: object) -> bool:
    """True for a WRONGTYPE reply: something else (planted, another tool's) sits at our key.

    Any other error reply is Redis trouble, not an absent value: a cluster's CLUSTERDOWN or
    TRYAGAIN, a demoted primary's READONLY during a failover. Reading those as "nothing there"
    would log people out during a failover instead of answering 503 (DESIGN invariant 7).
    """
    return isinstance(error, redis.ResponseError) and str(error).startswith("WRONGTYPE")


@dataclass(frozen=True)
class LoginRecord:
    """What we keep about one login. Never rendered, logged or sent anywhere but the wiki."""

    access_token: str
    refresh_token: str | None
    expires_at: float  # epoch seconds; math.inf for tokens that never expire
    profile: dict[str, Any]
    profile_at: float
    created_at: float = field(default_factory=time.time)
    #: "1.0a" for a login made with the OAuth 1.0a consumer: ``access_token`` is then the
    #: access token's key, ``access_secret`` its secret, and nothing expires or refreshes.
    oauth_version: str = "2.0"
    access_secret: str | None = None

    def __repr__(self) -> str:  # keep tokens out of tracebacks and debug logs
        return f"LoginRecord(user={self.profile.get('username')!r}, expires_at={self.expires_at})"

    def user(self) -> WikimediaUser:
        return WikimediaUser.from_profile(self.profile)

    def encode(self) -> bytes:
        data = asdict(self)
        if math.isinf(self.expires_at):
            data["expires_at"] = None
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> LoginRecord:
        data = json.loads(raw)
        if data.get("expires_at") is None:
            data["expires_at"] = math.inf
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Summary:
    """What rendering a page needs from a record, without its tokens (safe to cache)."""

    expires_at: float
    profile_at: float
    user: WikimediaUser

    @classmethod
    def of(cls, record: LoginRecord) -> Summary:
        """Raises :class:`~flask_wikimedia.user.ProfileError` for an unreadable profile."""
        return cls(record.expires_at, record.profile_at, record.user())


class VersionedRecord:
    """A record together with the version it was read at (for compare-and-set).

    ``failures`` counts the refreshes and profile re-reads of this login that failed because
    the wiki was down: requests waiting for another request's refresh watch it, so that one
    failure answers them all instead of each trying the failing wiki in turn.

    A record served from the cache is opened lazily: :attr:`summary` (user, token deadline,
    profile age) is at hand, and :attr:`record`, with the tokens, is decrypted on first use.
    """

    __slots__ = ("_open", "_record", "_summary", "failures", "version")

    def __init__(
        self,
        version: int,
        record: LoginRecord | None = None,
        failures: int = 0,
        *,
        summary: Summary | None = None,
        opener: Callable[[], LoginRecord] | None = None,
    ) -> None:
        if record is None and opener is None:
            raise ValueError("a VersionedRecord needs a record or a way to open one")
        self.version = version
        self.failures = failures
        self._record = record
        self._summary = summary
        self._open = opener

    @property
    def record(self) -> LoginRecord:
        """The whole record, tokens included (decrypted now if it came from the cache)."""
        if self._record is None:
            assert self._open is not None
            self._record = self._open()
        return self._record

    @property
    def summary(self) -> Summary:
        """User and deadlines; raises ProfileError for an unreadable profile."""
        if self._summary is None:
            self._summary = Summary.of(self.record)
        return self._summary

    def __repr__(self) -> str:
        return f"VersionedRecord(version={self.version}, failures={self.failures})"


class Prefetched(NamedTuple):
    """A record's Redis fields as the session interface read them, in the session's round trip
    (``HMGET v d f u`` and whether its tombstone exists); see :meth:`LoginStore.get`.

    ``ref`` is the reference of the login bound to that session (:func:`session_reference`),
    ``key`` the record key the interface read, named with the same digest as the session key.
    """

    ref: str
    key: str
    fields: Any
    gone: Any


#: A login bound to a server-side session: its reference is this marker and the session id
#: ('~' is not in the URL-safe alphabet of random references, session ids and states).
_SESSION_BOUND = "~"


def session_reference(sid: str) -> str:
    """The reference of a login bound to session ``sid`` (see the module docstring)."""
    return _SESSION_BOUND + sid


def new_reference() -> str:
    """An opaque, unguessable reference to a login record (256 bits)."""
    return secrets.token_urlsafe(32)


class LoginStore(ABC):
    """Where login records live. Two implementations: Redis, and in-process for development."""

    @abstractmethod
    def get(self, ref: str, prefetched: Prefetched | None = None) -> VersionedRecord | None:
        """The record of ``ref``, or None. ``prefetched``: its fields, already read in this
        request's session round trip; used (no second round trip) if they are for its key."""

    @abstractmethod
    def create(self, ref: str, record: LoginRecord) -> VersionedRecord: ...

    @abstractmethod
    def replace(self, ref: str, version: int, record: LoginRecord) -> VersionedRecord | None:
        """Write ``record`` only if the stored version is still ``version``; None otherwise
        (changed by someone else, or deleted by a logout)."""

    @abstractmethod
    def delete(self, ref: str) -> None: ...

    @abstractmethod
    def note_failure(self, ref: str) -> None:
        """Count a failed refresh of ``ref`` (see :attr:`VersionedRecord.failures`); never creates it."""

    @abstractmethod
    def claim_once(self, name: str, ttl: int) -> bool:
        """True the first time ``name`` is claimed within ``ttl`` seconds (single-use state)."""

    @abstractmethod
    def acquire_lock(self, ref: str, ttl: float) -> str | None:
        """A lock token if we got the lock on ``ref``, else None."""

    @abstractmethod
    def release_lock(self, ref: str, token: str) -> None: ...

    @abstractmethod
    def ping(self) -> None:
        """Raise StoreUnavailable if the store cannot be reached."""


# A new record (version 1) in place of anything at its key. The record's keys share a hash tag,
# so a script may touch them together on a Redis Cluster; scripts name no key themselves.
_CREATE = """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', 1, 'd', ARGV[1], 'u', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
# Logout: the record goes, its tombstone (KEYS[2]) stays for a record's lifetime.
_DELETE = """
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
return 1
"""
# Returns 0 if the version moved on (or the record is gone), else 1 + the failure count.
_CAS = """
if redis.call('HGET', KEYS[1], 'v') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'v', ARGV[2], 'd', ARGV[3], 'u', ARGV[5])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return 1 + tonumber(redis.call('HGET', KEYS[1], 'f') or '0')
end
return 0
"""
_FAILED = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HINCRBY', KEYS[1], 'f', 1) end
return 0
"""
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


#: Records whose summary a worker keeps (about 1 KiB each for a sysop with 122 rights).
CACHE_SIZE = 4096


class _SummaryCache:
    """A bounded LRU of record summaries, keyed by record key; an entry counts only for the
    exact version, deadline and sealed value (by digest) it was made from."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[str, tuple[int, int, bytes, Summary]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, version: int, deadline: int, digest: bytes) -> Summary | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[:3] != (version, deadline, digest):
                return None
            self._entries.move_to_end(key)
            return entry[3]

    def put(self, key: str, version: int, deadline: int, digest: bytes, summary: Summary) -> None:
        with self._lock:
            self._entries[key] = (version, deadline, digest, summary)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def _digest(sealed: bytes) -> bytes:
    return hashlib.blake2b(sealed, digest_size=16).digest()


class RedisLoginStore(LoginStore):
    """Login records in Redis, as a hash ``{v: version, d: AES-GCM(record), u: deadline}``
    with a TTL; key names are keyed digests of the references (see the module docstring).

    ``session_namer`` is the session interface's :class:`~flask_wikimedia.crypto.KeyNamer`
    (purpose ``"session-id"``): a session-bound login's keys are tagged with its session key's
    digest."""

    def __init__(
        self,
        client: RedisClient,
        prefix: str,
        sealer: Sealer,
        ttl: int,
        namer: KeyNamer,
        durability: Durability | None = None,
        *,
        session_namer: KeyNamer | None = None,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.sealer = sealer
        self.namer = namer
        self.durability = durability or Durability()
        self.session_namer = session_namer
        self.ttl_ms = int(ttl * 1000)
        self.cache = _SummaryCache(cache_size)
        self._create = client.register_script(_CREATE)
        self._cas = client.register_script(_CAS)
        self._delete = client.register_script(_DELETE)
        self._unlock = client.register_script(_UNLOCK)
        self._failed = client.register_script(_FAILED)

    def record_key(self, ref: str) -> str:
        """The Redis key of ``ref``'s record: no part of it is the reference itself."""
        return self._name("login", ref)

    def session_keys(self, tag: str) -> list[str]:
        """The record and tombstone keys of the login bound to the session whose key digest
        is ``tag``: what the session interface reads beside the session (same hash tag)."""
        return [f"{self.prefix}login:{{{tag}}}", f"{self.prefix}gone:{{{tag}}}"]

    def _tag(self, ref: str) -> str:
        if ref.startswith(_SESSION_BOUND) and self.session_namer is not None:
            return self.session_namer.name(ref[len(_SESSION_BOUND) :])
        return self.namer.name(ref)

    def _name(self, kind: str, value: str) -> str:
        # The digest is the hash tag: a login's record, lock and tombstone share a slot.
        return f"{self.prefix}{kind}:{{{self._tag(value)}}}"

    def _deadline(self) -> int:
        return int(time.time() * 1000) + self.ttl_ms

    def _seal(self, key: str, version: int, record: LoginRecord, deadline: int) -> bytes:
        return self.sealer.seal(record.encode(), f"{key}|{version}|{deadline}".encode())

    def get(self, ref: str, prefetched: Prefetched | None = None) -> VersionedRecord | None:
        if prefetched is not None and prefetched.ref == ref:
            # Read for this very reference (the key's digest is the session key's, computed
            # once by the session interface): no second HMAC, no second round trip.
            return self._parse(prefetched.key, prefetched.fields, prefetched.gone)
        key = self.record_key(ref)
        try:
            with self.client.pipeline(transaction=False) as pipe:
                pipe.hmget(key, ["v", "d", "f", "u"])
                pipe.exists(self._name("gone", ref))
                fields, gone = pipe.execute(raise_on_error=False)
        except REDIS_TROUBLE as exc:
            raise StoreUnavailable() from exc
        return self._parse(key, fields, gone)

    def _parse(self, key: str, fields: Any, gone: Any) -> VersionedRecord | None:
        """A record from its ``HMGET v d f u`` reply and its tombstone's ``EXISTS``."""
        for reply in (fields, gone):
            if isinstance(reply, Exception):
                if not wrong_type(reply):
                    raise StoreUnavailable() from reply
                log.warning("login record has an unexpected Redis type; treating it as absent")
                return None
        version, sealed, failures, until = fields
        if gone:
            log.warning("a login record was found after its logout (written back?); refused")
            return None
        if version is None or sealed is None or until is None:
            return None
        try:
            number = int(version)
            failed = int(failures or 0)
            deadline = int(until)
        except ValueError:
            return None
        if deadline < time.time() * 1000:
            return None  # outlived its TTL: written back without one, or a clock gone wrong
        if isinstance(sealed, str):
            sealed = sealed.encode()
        associated = f"{key}|{number}|{deadline}".encode()
        digest = _digest(sealed)
        summary = self.cache.get(key, number, deadline, digest)
        if summary is not None:
            # Seen in this exact form before (same version, deadline and sealed bytes, all
            # read from Redis just now): no decryption until a token is needed.
            return VersionedRecord(
                number,
                failures=failed,
                summary=summary,
                opener=lambda: self._open(sealed, associated),
            )
        try:
            record = self._open(sealed, associated)
        except ValueError:
            return None
        stored = VersionedRecord(number, record, failed)
        # An unreadable profile is not cached: the login code ends such a login.
        with contextlib.suppress(ProfileError):
            self.cache.put(key, number, deadline, digest, stored.summary)
        return stored

    def _open(self, sealed: bytes, associated: bytes) -> LoginRecord:
        """Decrypt and decode; ValueError for anything we did not seal here."""
        plain = self.sealer.open(sealed, associated)
        if plain is None:
            log.warning("login record failed authentication; treating it as absent")
            raise ValueError("unauthenticated login record")
        try:
            return LoginRecord.decode(plain)
        except (ValueError, TypeError) as exc:
            log.warning("login record could not be decoded; treating it as absent")
            raise ValueError("undecodable login record") from exc

    def _write(self, script: Script, keys: list[str], args: list[bytes | int], what: str) -> Any:
        """Run a write script; with :class:`Durability` on, followed on the same connection
        by its ``WAIT`` (outside any transaction: inside one, WAIT does not wait)."""
        if self.durability.replicas <= 0:
            return script(keys=keys, args=args)
        with self.client.pipeline(transaction=False) as pipe:
            script(keys=keys, args=args, client=pipe)
            self.durability.add_to(pipe)
            reply, acknowledged = pipe.execute()
        self.durability.check(acknowledged, what)
        return reply

    def create(self, ref: str, record: LoginRecord) -> VersionedRecord:
        key = self.record_key(ref)
        deadline = self._deadline()
        sealed = self._seal(key, 1, record, deadline)
        try:
            self._write(self._create, [key], [sealed, deadline, self.ttl_ms], "a new login")
        except REDIS_TROUBLE as exc:
            raise StoreUnavailable() from exc
        return VersionedRecord(1, record)

    def replace(self, ref: str, version: int, record: LoginRecord) -> VersionedRecord | None:
        key = self.record_key(ref)
        new = version + 1
        deadline = self._deadline()
        sealed = self._seal(key, new, record, deadline)
        args: list[bytes | int] = [version, new, sealed, self.ttl_ms, deadline]
        try:
            done = self._write(self._cas, [key], args, "a login update")
        except REDIS_TROUBLE as exc:
            raise StoreUnavailable() from exc
        return VersionedRecord(new, record, int(done) - 1) if done else None

    def delete(self, ref: str) -> None:
        # The tombstone outlives any copy of the record: a record's deadline is at most one
        # TTL after its last write, which came before this.
        keys = [self.record_key(ref), self._name("gone", ref)]
        try:
            self._write(self._delete, keys, [self.ttl_ms], "a logout")
        except REDIS_TROUBLE as exc:
            raise StoreUnavailable() from exc

    def note_failure(self, ref: str) -> None:
        try:
            self._failed(keys=[self.record_key(ref)])
        except REDIS_TROUBLE:
            log.warning("could not count a failed refresh; waiting requests will time out")

    def claim_once(self, name: str, ttl: int) -> bool:
        # Named by the plain namer, whatever the state looks like: a state comes from a URL.
        once = f"{self.prefix}once:{{{self.namer.name(name)}}}"
        try:
            return bool(self.client.set(once, b"1", nx=True, ex=ttl))
        except REDIS_TROUBLE as exc:
            raise StoreUnavailable() from exc

    def acquire_lock(self, ref: str, ttl: float) -> str | None:
        token = secrets.token_hex(16)
        try:
            got = self.client.set(self._name("lock", ref), token, nx=True, px=int(ttl * 1000))
        except REDIS_TROUBLE as exc:
            raise StoreUnavailable() from exc
        return token if got else None

    def release_lock(self, ref: str, token: str) -> None:
        try:
            self._unlock(keys=[self._name("lock", ref)], args=[token])
        except REDIS_TROUBLE:
            log.warning("could not release a refresh lock; it will expire by itself")

    def ping(self) -> None:
        try:
            self.client.ping()
        except REDIS_TROUBLE as exc:
            raise StoreUnavailable() from exc


class MemoryLoginStore(LoginStore):
    """In-process records for debug and testing only (refused otherwise by ``init_app``).

    Single process only: it breaks DESIGN invariant 10 by design, which is why production
    configurations must name a Redis.
    """

    def __init__(self, ttl: int) -> None:
        self.ttl = ttl
        self._records: dict[str, tuple[VersionedRecord, float]] = {}
        self._once: dict[str, float] = {}
        self._locks: dict[str, tuple[str, float]] = {}
        self._mutex = threading.Lock()

    def get(self, ref: str, prefetched: Prefetched | None = None) -> VersionedRecord | None:
        with self._mutex:
            item = self._records.get(ref)
            if item is None or item[1] < time.time():
                return None
            return item[0]

    def create(self, ref: str, record: LoginRecord) -> VersionedRecord:
        stored = VersionedRecord(1, record)
        with self._mutex:
            self._records[ref] = (stored, time.time() + self.ttl)
        return stored

    def replace(self, ref: str, version: int, record: LoginRecord) -> VersionedRecord | None:
        with self._mutex:
            item = self._records.get(ref)
            if item is None or item[0].version != version:
                return None
            stored = VersionedRecord(version + 1, record, item[0].failures)
            self._records[ref] = (stored, time.time() + self.ttl)
            return stored

    def delete(self, ref: str) -> None:
        with self._mutex:
            self._records.pop(ref, None)

    def note_failure(self, ref: str) -> None:
        with self._mutex:
            item = self._records.get(ref)
            if item is not None:
                old = item[0]
                self._records[ref] = (
                    VersionedRecord(old.version, old.record, old.failures + 1),
                    item[1],
                )

    def claim_once(self, name: str, ttl: int) -> bool:
        now = time.time()
        with self._mutex:
            for key in [k for k, exp in self._once.items() if exp < now]:
                del self._once[key]
            if name in self._once:
                return False
            self._once[name] = now + ttl
            return True

    def acquire_lock(self, ref: str, ttl: float) -> str | None:
        now = time.time()
        with self._mutex:
            held = self._locks.get(ref)
            if held is not None and held[1] > now:
                return None
            token = secrets.token_hex(16)
            self._locks[ref] = (token, now + ttl)
            return token

    def release_lock(self, ref: str, token: str) -> None:
        with self._mutex:
            if self._locks.get(ref, ("", 0.0))[0] == token:
                del self._locks[ref]

    def ping(self) -> None:
        return None
