"""Server-side login records: tokens and profile, encrypted, versioned, written by compare-and-set.

The session only holds an opaque random reference; the record itself lives here under
``<prefix>login:{<name>}``, where ``<name>`` is a keyed digest of the reference
(:class:`~flask_wikimedia.crypto.KeyNamer`): a neighbour who reads every key name on a shared
Redis learns no reference (DESIGN invariant 11). Every write after creation is a compare-and-set
on a version number, so a request that read the record before a refresh or a logout can never
write old tokens back or bring a deleted login back to life (DESIGN invariants 3 and 4).
Refreshes are single-flight under a short lock, ``<prefix>lock:{<name>}``.

Ending a login deletes the record and leaves a tombstone, ``<prefix>gone:{<name>}``, that lives
as long as the record could have: a neighbour who dumped the record while the user was logged in
and writes it back after the logout finds it refused (the tombstone was not in the dump). Each
sealed value carries its own deadline (authenticated), so a record written back without a TTL
is dead by the time its tombstone expires. The three names of one login share a hash tag, so
they sit in one Redis Cluster slot.

Redis trouble of any kind becomes :class:`~flask_wikimedia.errors.StoreUnavailable` (a 503),
and anything we cannot decrypt is treated as absent: planted or corrupted values log the user
out, nothing worse.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from .crypto import KeyNamer, Sealer
from .errors import StoreUnavailable
from .user import WikimediaUser

log = logging.getLogger("flask_wikimedia.store")


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


@dataclass(frozen=True)
class Stored:
    """A record together with the version it was read at (for compare-and-set).

    ``failures`` counts the refreshes and profile re-reads of this login that failed because
    the wiki was down: requests waiting for another request's refresh watch it, so that one
    failure answers them all instead of each trying the failing wiki in turn.
    """

    version: int
    record: LoginRecord
    failures: int = 0


def new_reference() -> str:
    """An opaque, unguessable reference to a login record (256 bits)."""
    return secrets.token_urlsafe(32)


class LoginStore(ABC):
    """Where login records live. Two implementations: Redis, and in-process for development."""

    @abstractmethod
    def get(self, ref: str) -> Stored | None: ...

    @abstractmethod
    def create(self, ref: str, record: LoginRecord) -> Stored: ...

    @abstractmethod
    def replace(self, ref: str, version: int, record: LoginRecord) -> Stored | None:
        """Write ``record`` only if the stored version is still ``version``; None otherwise
        (changed by someone else, or deleted by a logout)."""

    @abstractmethod
    def delete(self, ref: str) -> None: ...

    @abstractmethod
    def note_failure(self, ref: str) -> None:
        """Count a failed refresh of ``ref`` (see :attr:`Stored.failures`); never creates it."""

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


class RedisLoginStore(LoginStore):
    """Login records in Redis, as a hash ``{v: version, d: AES-GCM(record), u: deadline}``
    with a TTL; key names are keyed digests of the references (see the module docstring)."""

    def __init__(
        self, client: redis.Redis, prefix: str, sealer: Sealer, ttl: int, namer: KeyNamer
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.sealer = sealer
        self.namer = namer
        self.ttl_ms = int(ttl * 1000)
        self._cas = client.register_script(_CAS)
        self._unlock = client.register_script(_UNLOCK)
        self._failed = client.register_script(_FAILED)

    def record_key(self, ref: str) -> str:
        """The Redis key of ``ref``'s record: no part of it is the reference itself."""
        return self._name("login", ref)

    def _name(self, kind: str, value: str) -> str:
        # The digest is the hash tag: a login's record, lock and tombstone share a slot.
        return f"{self.prefix}{kind}:{{{self.namer.name(value)}}}"

    def _deadline(self) -> int:
        return int(time.time() * 1000) + self.ttl_ms

    def _seal(self, key: str, version: int, record: LoginRecord, deadline: int) -> bytes:
        return self.sealer.seal(record.encode(), f"{key}|{version}|{deadline}".encode())

    def get(self, ref: str) -> Stored | None:
        key = self.record_key(ref)
        try:
            with self.client.pipeline(transaction=False) as pipe:
                pipe.hmget(key, ["v", "d", "f", "u"])
                pipe.exists(self._name("gone", ref))
                fields, gone = pipe.execute(raise_on_error=False)
        except redis.RedisError as exc:
            raise StoreUnavailable() from exc
        if isinstance(fields, redis.ResponseError) or isinstance(gone, redis.ResponseError):
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
        plain = self.sealer.open(sealed, f"{key}|{number}|{deadline}".encode())
        if plain is None:
            log.warning("login record failed authentication; treating it as absent")
            return None
        try:
            return Stored(number, LoginRecord.decode(plain), failed)
        except (ValueError, TypeError):
            log.warning("login record could not be decoded; treating it as absent")
            return None

    def create(self, ref: str, record: LoginRecord) -> Stored:
        key = self.record_key(ref)
        deadline = self._deadline()
        try:
            with self.client.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                pipe.hset(
                    key, mapping={"v": 1, "d": self._seal(key, 1, record, deadline), "u": deadline}
                )
                pipe.pexpire(key, self.ttl_ms)
                pipe.execute()
        except redis.RedisError as exc:
            raise StoreUnavailable() from exc
        return Stored(1, record)

    def replace(self, ref: str, version: int, record: LoginRecord) -> Stored | None:
        key = self.record_key(ref)
        new = version + 1
        deadline = self._deadline()
        sealed = self._seal(key, new, record, deadline)
        try:
            done = self._cas(keys=[key], args=[version, new, sealed, self.ttl_ms, deadline])
        except redis.RedisError as exc:
            raise StoreUnavailable() from exc
        return Stored(new, record, int(done) - 1) if done else None

    def delete(self, ref: str) -> None:
        # The tombstone outlives any copy of the record: a record's deadline is at most one
        # TTL after its last write, which came before this.
        try:
            with self.client.pipeline(transaction=True) as pipe:
                pipe.delete(self.record_key(ref))
                pipe.set(self._name("gone", ref), b"1", px=self.ttl_ms)
                pipe.execute()
        except redis.RedisError as exc:
            raise StoreUnavailable() from exc

    def note_failure(self, ref: str) -> None:
        try:
            self._failed(keys=[self.record_key(ref)])
        except redis.RedisError:
            log.warning("could not count a failed refresh; waiting requests will time out")

    def claim_once(self, name: str, ttl: int) -> bool:
        try:
            return bool(self.client.set(self._name("once", name), b"1", nx=True, ex=ttl))
        except redis.RedisError as exc:
            raise StoreUnavailable() from exc

    def acquire_lock(self, ref: str, ttl: float) -> str | None:
        token = secrets.token_hex(16)
        try:
            got = self.client.set(self._name("lock", ref), token, nx=True, px=int(ttl * 1000))
        except redis.RedisError as exc:
            raise StoreUnavailable() from exc
        return token if got else None

    def release_lock(self, ref: str, token: str) -> None:
        try:
            self._unlock(keys=[self._name("lock", ref)], args=[token])
        except redis.RedisError:
            log.warning("could not release a refresh lock; it will expire by itself")

    def ping(self) -> None:
        try:
            self.client.ping()
        except redis.RedisError as exc:
            raise StoreUnavailable() from exc


class MemoryLoginStore(LoginStore):
    """In-process records for debug and testing only (refused otherwise by ``init_app``).

    Single process only: it breaks DESIGN invariant 10 by design, which is why production
    configurations must name a Redis.
    """

    def __init__(self, ttl: int) -> None:
        self.ttl = ttl
        self._records: dict[str, tuple[Stored, float]] = {}
        self._once: dict[str, float] = {}
        self._locks: dict[str, tuple[str, float]] = {}
        self._mutex = threading.Lock()

    def get(self, ref: str) -> Stored | None:
        with self._mutex:
            item = self._records.get(ref)
            if item is None or item[1] < time.time():
                return None
            return item[0]

    def create(self, ref: str, record: LoginRecord) -> Stored:
        stored = Stored(1, record)
        with self._mutex:
            self._records[ref] = (stored, time.time() + self.ttl)
        return stored

    def replace(self, ref: str, version: int, record: LoginRecord) -> Stored | None:
        with self._mutex:
            item = self._records.get(ref)
            if item is None or item[0].version != version:
                return None
            stored = Stored(version + 1, record, item[0].failures)
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
                self._records[ref] = (Stored(old.version, old.record, old.failures + 1), item[1])

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
