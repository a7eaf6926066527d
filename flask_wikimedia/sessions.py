"""Flask-Session on Redis, made safe for a shared, sometimes flaky Redis such as Toolforge's.

:class:`SafeRedisSessionInterface` is Flask-Session 0.8's ``RedisSessionInterface`` with these
changes, each one for a measured failure of the original (security catalogue 1.3, 3.14, 3.15):

* **Sealed values, never pickle.** Values are msgpack sealed with AES-GCM under a key derived
  from ``SECRET_KEY``, with the Redis key as associated data. Flask-Session 0.8 falls back to
  ``pickle.loads`` (code execution for anyone who can write the key) and accepts JSON planted by
  another tenant of the shared Redis. Here anything we did not seal for this key (planted,
  garbled, moved from another key, sealed with an old secret) reads as "no session": a fresh
  session id and a warning that does not contain the data.
* **Redis trouble is a 503, not a 500.** Flask opens the session in ``ctx.push()``, before error
  handlers apply: an exception there is a bare 500 (plus a secondary ``AttributeError`` in
  ``save_session``). So :meth:`~SafeRedisSessionInterface.open_session` never raises; it returns
  an empty session marked unavailable, and a ``before_request`` hook raises
  :class:`~flask_wikimedia.errors.StoreUnavailable` through the normal error handling, except
  for the endpoints listed as exempt (static files, health checks), which are served with the
  empty session. A failure while saving turns the finished response into the same 503 page.
* **No resurrection.** A session read from Redis is written back only if its key still exists
  (``SET XX``), and an unmodified one only has its lifetime extended (``EXPIRE``), so a slow
  request that started before a logout cannot bring the deleted session back (catalogue LO-4).
  A session ended at login or logout leaves a tombstone (``<prefix>gone:{<digest>}``) for the
  session lifetime, read in the same round trip as the session: a value written back from a
  dump taken earlier is refused (catalogue KN-2).
* **One round trip for a logged-in request.** The script that reads the session also reads the
  login record bound to it (``<login prefix>login:{<digest>}`` and its tombstone: the same hash
  tag, so one Redis Cluster slot) when the extension registered where such records live
  (:func:`read_logins_with_sessions`); the login code then finds the record already read
  (:attr:`SafeRedisSession.prefetched`).
* **Key names reveal nothing.** A session is stored under ``<prefix><keyed digest of the id>``
  (:class:`~flask_wikimedia.crypto.KeyNamer`), never under the id itself: a neighbour who can
  read every key name of a shared Redis (replication commands give a full dump) learns no
  cookie (DESIGN invariant 11). Cookies from before this change find nothing: a new session.
* ``Secure`` follows the request: set when ``SESSION_COOKIE_SECURE`` is true or the request came
  over https (after ``ProxyFix``). The cookie is deleted with the flags it was set with, so a
  ``__Host-`` cookie really goes away.

Use it with :func:`use_redis_sessions`; :func:`connect_redis` builds a client whose timeouts keep
a hung Redis from hanging the tool (redis-py's defaults retry for about a minute).

An app that installed plain Flask-Session on Redis (``SESSION_TYPE = "redis"``, ``Session(app)``,
as Flask-Session's docs show) gets the same interface from ``Wikimedia(app)`` through
:func:`harden_sessions`, whichever of the two was called first: Flask-Session's own interface
raises on Redis trouble (a 500 after its client's retries) and stores the session id in the
clear as the key name. Clients handed to us are copied with :func:`bounded_client`.

What it takes from Flask-Session: the documented ``RedisSessionInterface`` constructor (client,
key prefix, permanence, id length) and ``RedisSession``; ``open_session`` and ``save_session``
are Flask's public ``SessionInterface`` hooks, written here in full, so none of Flask-Session's
private storage hooks is called or relied on. The dependency is bounded to the minor version
the suite tests (``flask-session>=0.8,<0.9`` in pyproject).

Why one module of this size: every change to Flask-Session below answers a measured failure of
the original, and they only hold together (sealing, tombstones, the 503 path, hardening a
interface installed later); read them in one place.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import warnings
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import redis
from flask import Flask, Request, current_app, has_request_context, request
from flask_session.redis import RedisSession, RedisSessionInterface
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool
from werkzeug.wrappers import Response

from .crypto import KeyNamer, Sealer
from .errors import StoreUnavailable
from .store import REDIS_TROUBLE, Durability, Prefetched, RedisClient, session_reference, wrong_type

log = logging.getLogger("flask_wikimedia.sessions")

__all__ = [
    "REDIS_TROUBLE",
    "SafeRedisSession",
    "SafeRedisSessionInterface",
    "bounded_client",
    "connect_redis",
    "harden_sessions",
    "read_logins_with_sessions",
    "use_redis_sessions",
    "wait_for_replicas",
]

#: Largest session value we will try to open; anything bigger is garbage (catalogue RI-4).
MAX_SESSION_BYTES = 64 * 1024
#: Session ids we mint are ``secrets.token_urlsafe(32)``; a cookie that does not look like one is
#: ignored, so a client cannot make us read arbitrary Redis keys.
_SID = re.compile(r"[A-Za-z0-9_-]{16,128}")
#: Set in the WSGI environ when the session could not be opened (the hook reads it there:
#: touching ``flask.session`` would mark the session as used).
_UNAVAILABLE = "flask_wikimedia.session_store_unavailable"
_Data = dict[str, Any]
_decoder = msgspec.msgpack.Decoder(_Data)
#: The value and its remaining lifetime in one round trip, so that an unmodified session needs
#: no EXPIRE on the way out unless its lifetime has run down by more than REFRESH_SLACK.
#: Also whether the session was ended (its tombstone, KEYS[2], exists): a value written back
#: from a dump after a login or logout is refused.
#: With four keys, also the login record bound to the session (KEYS[3], its HMGET fields) and
#: its tombstone (KEYS[4]): a logged-in request's only round trip. pcall: a record key of the
#: wrong type is the login store's business (it reads as logged out), not the session's.
_GET_WITH_TTL = """
local value = redis.call('GET', KEYS[1])
local reply = {value, redis.call('PTTL', KEYS[1]), redis.call('EXISTS', KEYS[2])}
if value and #KEYS == 4 then
  reply[4] = redis.pcall('HMGET', KEYS[3], 'v', 'd', 'f', 'u')
  reply[5] = redis.call('EXISTS', KEYS[4])
end
return reply
"""
#: app.extensions entry: where login records bound to sessions live (see read_logins_with_sessions).
_LOGIN_KEYS = "flask_wikimedia.sessions.login_keys"
#: app.extensions entry: the Durability of login and logout writes (see wait_for_replicas).
_DURABILITY = "flask_wikimedia.sessions.durability"
#: End a session: delete it, and leave its tombstone (KEYS[2], same hash tag) for ARGV[1] s.
_END = "redis.call('DEL', KEYS[1]); return redis.call('SET', KEYS[2], '1', 'EX', ARGV[1])"
#: Extend an unmodified session's lifetime only once it has lost this share of it (1%: at most
#: one EXPIRE every ~2.4 hours on a 10-day session, instead of one per request).
REFRESH_SLACK = 0.01
_encoder = msgspec.msgpack.Encoder()
#: The KeyNamer purpose of session key names (the login store names bound logins with it too).
SESSION_NAMES = "session-id"


def connect_redis(url: str, *, timeout: float = 1.0) -> redis.Redis:
    """A Redis client for sessions and login records that fails fast.

    ``timeout`` bounds connecting and each reply; no retries with backoff (redis-py 8's default
    retries ten times, about a minute against a hung server). Dropped connections are still
    replaced: the pool checks a connection when it hands it out, and ``health_check_interval``
    pings one that sat idle.
    """
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        health_check_interval=30,
        retry=Retry(NoBackoff(), 0),
    )


#: The longest a Redis call may take (connect, or one reply) on a client we bound: a request
#: makes at most two calls that can time out before it knows Redis is in trouble (invariant 7).
MAX_REDIS_TIMEOUT = 1.0
_bounded: weakref.WeakKeyDictionary[redis.Redis, redis.Redis] = weakref.WeakKeyDictionary()
_bounded_lock = threading.Lock()


def _fail_fast(connection_kwargs: dict[str, Any], timeout: float) -> dict[str, Any]:
    """``connection_kwargs`` with connect and read timeouts of at most ``timeout`` and no
    retries (redis-py's default retries with backoff: 14 s for a 1 s timeout)."""
    kwargs = dict(connection_kwargs)
    for name in ("socket_timeout", "socket_connect_timeout"):
        given = kwargs.get(name)
        kwargs[name] = timeout if given is None else min(float(given), timeout)
    kwargs["retry"] = Retry(NoBackoff(), 0)
    kwargs.pop("retry_on_error", None)
    kwargs["retry_on_timeout"] = False
    kwargs.setdefault("health_check_interval", 30)
    return kwargs


def _bounded_sentinel(
    client: redis.Redis, pool: SentinelConnectionPool, timeout: float
) -> redis.Redis:
    """A copy of a ``Sentinel.master_for`` client with the bounds of :func:`bounded_client`.

    Both kinds of call are bounded: asking a sentinel where the primary is (each sentinel
    answers within ``timeout`` or is skipped) and talking to the primary. The copy has its own
    ``Sentinel`` on the same sentinels, for the same service, so it follows a failover as the
    original does.
    """
    with _bounded_lock:
        known = _bounded.get(client)
        if known is not None:
            return known
        manager = pool.sentinel_manager
        addresses = [
            (
                s.connection_pool.connection_kwargs["host"],
                s.connection_pool.connection_kwargs["port"],
            )
            for s in manager.sentinels
        ]
        # The sentinels' clients are plain Redis clients: ``retry`` says it all for them
        # (``retry_on_timeout`` is deprecated there).
        sentinel_kwargs = _fail_fast(manager.sentinel_kwargs, timeout)
        sentinel_kwargs.pop("retry_on_timeout")
        # The pool adds a reference to its own proxy; the copy's pool makes its own.
        kwargs = {k: v for k, v in pool.connection_kwargs.items() if k != "connection_pool"}
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            addresses,
            min_other_sentinels=manager.min_other_sentinels,
            sentinel_kwargs=sentinel_kwargs,
        )
        bounded: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            pool.service_name,
            connection_class=pool.connection_class,
            max_connections=pool.max_connections,
            check_connection=pool.check_connection,
            **_fail_fast(kwargs, timeout),
        )
        _bounded[client] = bounded
        return bounded


_bounded_clusters: weakref.WeakKeyDictionary[RedisCluster, RedisCluster] = (
    weakref.WeakKeyDictionary()
)
#: Connection settings a cluster client adds for itself (bound to that client): not copied.
_CLUSTER_OWN = ("redis_connect_func", "oss_cluster_maint_notifications_handler", "retry")


def _bounded_cluster(client: RedisCluster, timeout: float) -> RedisCluster:
    """A copy of a cluster client with the same bounds as :func:`bounded_client`.

    redis-py's cluster client retries ten times with backoff and waits 5 s to connect to a
    node by default. The copy is seeded with the same nodes and settings, connects within
    ``timeout``, and does not retry: a node that is gone is a 503 for this request, and the
    next request finds the new topology (redirections, ``MOVED`` and ``ASK``, are followed
    as always: they are no error).
    """
    with _bounded_lock:
        known = _bounded_clusters.get(client)
        if known is not None:
            return known
        own = client.get_connection_kwargs()  # type: ignore[no-untyped-call]
        kwargs = _fail_fast({k: v for k, v in own.items() if k not in _CLUSTER_OWN}, timeout)
        # The cluster client takes ``retry`` for itself (its nodes get their own copies).
        retry = kwargs.pop("retry")
        kwargs.pop("retry_on_timeout")
        nodes = client.nodes_manager.startup_nodes.values()
        bounded = RedisCluster(
            startup_nodes=[
                ClusterNode(node.host, node.port)  # type: ignore[no-untyped-call]
                for node in nodes
            ],
            address_remap=client.nodes_manager.address_remap,
            retry=retry,
            **kwargs,
        )
        _bounded_clusters[client] = bounded
        return bounded


def bounded_client(client: RedisClient, *, timeout: float = MAX_REDIS_TIMEOUT) -> RedisClient:
    """A client on the same server as ``client`` that fails fast, for a client handed to us.

    Its connect and read timeouts are the smaller of ``client``'s and ``timeout`` (a client made
    with none would wait forever on a hung Redis), and it never retries: redis-py's default
    policy retries with backoff, 14 s for a 1 s timeout. The caller's client is left untouched;
    the copy has its own connection pool, shared by every caller that bounds the same client.
    A Redis Cluster client is copied with the same bounds (see :func:`_bounded_cluster`), and so
    is a Sentinel-managed primary's client, sentinels included (see :func:`_bounded_sentinel`).
    Clients on pools we cannot copy faithfully (a Sentinel replica pool, custom pools) are
    returned as they are, with a warning: configure their timeouts and retries yourself.
    """
    if isinstance(client, RedisCluster):
        return _bounded_cluster(client, timeout)
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool) and pool.is_master:
        return _bounded_sentinel(client, pool, timeout)
    if type(pool) not in (redis.ConnectionPool, redis.BlockingConnectionPool):
        log.warning(
            "cannot bound the timeouts of a Redis client on a %s: give it socket_timeout, "
            "socket_connect_timeout (1 s) and retry=Retry(NoBackoff(), 0) yourself",
            type(pool).__name__,
        )
        return client
    with _bounded_lock:
        known = _bounded.get(client)
        if known is not None:
            return known
        kwargs = _fail_fast(pool.connection_kwargs, timeout)
        extra: dict[str, Any] = {}
        if isinstance(pool, redis.BlockingConnectionPool):
            # Waiting for a free connection counts against the same bound.
            extra["timeout"] = timeout if pool.timeout is None else min(pool.timeout, timeout)
        copy_pool = type(pool)(
            connection_class=pool.connection_class,
            max_connections=pool.max_connections,
            **extra,
            **kwargs,
        )
        bounded = redis.Redis(connection_pool=copy_pool)
        _bounded[client] = bounded
        return bounded


class SafeRedisSession(RedisSession):  # type: ignore[misc]
    """A server-side session that remembers whether it came from Redis.

    ``stored``: read from Redis (so a write must not recreate a key deleted meanwhile).
    ``store_unavailable``: Redis failed while opening; the session is empty and never saved.
    """

    def __init__(
        self,
        initial: _Data | None = None,
        sid: str | None = None,
        permanent: bool | None = None,
        *,
        stored: bool = False,
        store_unavailable: bool = False,
    ) -> None:
        super().__init__(initial, sid=sid, permanent=permanent)
        self.stored = stored
        self.store_unavailable = store_unavailable
        #: Milliseconds the stored value had left when it was read (None: not read).
        self.remaining_ms: int | None = None
        #: Regenerated (a login or logout): its write waits for replicas if so configured.
        self.durable = False
        #: The bound login record, read in the same round trip as the session (or None).
        self.prefetched: Prefetched | None = None

    def take_prefetched(self) -> Prefetched | None:
        """The prefetched login record, once: a later read in this request goes to Redis."""
        prefetched, self.prefetched = self.prefetched, None
        return prefetched


class SafeRedisSessionInterface(RedisSessionInterface):  # type: ignore[misc]
    """Flask-Session's Redis interface with sealed values and a 503 for Redis trouble."""

    session_class = SafeRedisSession

    def __init__(
        self,
        app: Flask,
        client: RedisClient,
        key_prefix: str,
        *,
        permanent: bool = True,
        sid_length: int = 32,
    ) -> None:
        if not app.secret_key:
            raise RuntimeError(
                "SafeRedisSessionInterface needs SECRET_KEY: session values are sealed with a "
                "key derived from it. Set SECRET_KEY before installing the session interface."
            )
        if client.get_connection_kwargs().get("decode_responses"):
            raise RuntimeError(
                "The session Redis client must return bytes: create it without "
                "decode_responses=True (session values are binary)."
            )
        with warnings.catch_warnings():
            # Flask-Session knows only redis.Redis: given a RedisCluster, it warns and makes a
            # client for localhost:6379 (never connected: ours replaces it just below).
            warnings.filterwarnings("ignore", "No valid Redis instance", RuntimeWarning)
            super().__init__(
                app,
                client=client,
                key_prefix=key_prefix,
                use_signer=False,
                permanent=permanent,
                sid_length=sid_length,
            )
        self.client: RedisClient = client
        self.key_prefix: str = key_prefix
        self._get_with_ttl = client.register_script(_GET_WITH_TTL)
        self._end_script = client.register_script(_END)
        self.sealer = Sealer(
            app.secret_key, "session", list(app.config.get("SECRET_KEY_FALLBACKS") or ())
        )
        self.namer = KeyNamer(app.secret_key, SESSION_NAMES)
        self._login_entry: object = None
        self._login_keys_found: Callable[[str], list[str]] | None = None

    def _get_store_id(self, sid: str) -> str:
        """The Redis key of session ``sid``: a keyed digest, so the key name is no cookie.

        The digest is a hash tag, shared with the session's tombstone (one Cluster slot)."""
        return f"{self.key_prefix}{{{self.namer.name(sid)}}}"

    def _tag_of(self, store_id: str) -> str:
        return store_id[len(self.key_prefix) + 1 : -1]

    def _tombstone(self, store_id: str) -> str:
        # "gone:" cannot start a digest (no ':' in URL-safe base64): no clash with sessions.
        return self.key_prefix + "gone:" + store_id[len(self.key_prefix) :]

    def _end(self, store_id: str, lifetime_s: int, *, durable: bool = False) -> None:
        """Delete a session for good: a tombstone, for as long as the session could have
        lived, refuses a copy written back from a dump taken before (DESIGN invariant 11).

        One script (not a MULTI), so that at a logout it can be followed by a ``WAIT``."""
        keys = [store_id, self._tombstone(store_id)]
        self._write(
            lambda client: self._end_script(keys=keys, args=[max(1, lifetime_s)], client=client),
            durable,
        )

    # -- values ---------------------------------------------------------------------------

    def seal(self, store_id: str, data: _Data) -> bytes:
        return self.sealer.seal(_encoder.encode(data), store_id.encode())

    def unseal(self, store_id: str, raw: bytes) -> _Data | None:
        """The session data, or None for anything we did not seal for this key."""
        if len(raw) > MAX_SESSION_BYTES:
            return None
        plain = self.sealer.open(raw, store_id.encode())
        if plain is None:
            return None
        try:
            return _decoder.decode(plain)
        except msgspec.MsgspecError:
            return None

    def _retrieve_with_ttl(
        self,
        store_id: str,
        login_keys: Callable[[str], list[str]] | None = None,
        sid: str = "",
    ) -> tuple[_Data | None, int | None, Prefetched | None]:
        """The session data, the milliseconds it has left and, given ``login_keys``, the login
        record bound to session ``sid``: one round trip."""
        keys = [store_id, self._tombstone(store_id)]
        if login_keys is not None:
            keys += login_keys(self._tag_of(store_id))
        try:
            reply = self._get_with_ttl(keys=keys)
        except redis.ResponseError as exc:
            if not wrong_type(exc):
                raise  # a cluster or a failover in trouble: the caller's 503
            # WRONGTYPE: something else (planted, or another tool's data) sits at this key.
            log.warning("a session key holds a value of the wrong Redis type; starting anew")
            return None, None, None
        raw, remaining, ended = reply[:3]
        if raw is None:
            return None, None, None
        if ended:
            log.warning("a session was found after it ended (written back?); starting anew")
            return None, None, None
        data = self.unseal(store_id, raw) if isinstance(raw, bytes) else None
        if data is None:
            # Never log the value: it may be someone's session, or an attacker's payload.
            log.warning(
                "discarded a session value that was not sealed for its key (planted, corrupted, "
                "or sealed with another SECRET_KEY); starting a new session"
            )
            return None, None, None
        prefetched = None
        if len(reply) == 5:
            prefetched = Prefetched(session_reference(sid), keys[2], reply[3], reply[4])
        return data, int(remaining), prefetched

    def _new_session(self, *, store_unavailable: bool = False) -> SafeRedisSession:
        return self.session_class(
            sid=secrets.token_urlsafe(self.sid_length),
            permanent=self.permanent,
            store_unavailable=store_unavailable,
        )

    def _login_keys(self, app: Flask) -> Callable[[str], list[str]] | None:
        """How to name the login record bound to a session, if it lives on our Redis."""
        entry = app.extensions.get(_LOGIN_KEYS)
        if entry is None:
            return None
        if entry is not self._login_entry:  # checked once per registration, not per request
            client, login_keys = entry
            self._login_entry = entry
            self._login_keys_found = login_keys if _same_server(self.client, client) else None
        return self._login_keys_found

    # -- Flask's session interface ---------------------------------------------------------

    def get_cookie_secure(self, app: Flask) -> bool:
        if app.config.get("SESSION_COOKIE_SECURE"):
            return True
        return has_request_context() and request.is_secure

    def open_session(self, app: Flask, request: Request) -> SafeRedisSession:
        sid = request.cookies.get(self.get_cookie_name(app))
        if not sid or not _SID.fullmatch(sid):
            return self._new_session()
        store_id = self._get_store_id(sid)
        try:
            data, remaining_ms, prefetched = self._retrieve_with_ttl(
                store_id, self._login_keys(app), sid
            )
        except REDIS_TROUBLE as exc:
            log.warning("session store unavailable while opening a session: %r", exc)
            request.environ[_UNAVAILABLE] = True
            return self._new_session(store_unavailable=True)
        if data is None:
            # Unknown, expired or unreadable: a fresh id, never the one the client chose.
            return self._new_session()
        opened = self.session_class(data, sid=sid, stored=True)
        opened.remaining_ms = remaining_ms
        opened.prefetched = prefetched
        return opened

    def regenerate(self, session: SafeRedisSession) -> None:
        """A new session id (at login and logout); the old key is deleted."""
        if session.stored:
            lifetime = int(current_app.permanent_session_lifetime.total_seconds())
            try:
                self._end(self._get_store_id(session.sid), lifetime, durable=True)
            except REDIS_TROUBLE as exc:
                raise StoreUnavailable() from exc
        session.sid = secrets.token_urlsafe(self.sid_length)
        session.stored = False
        session.modified = True
        session.durable = True

    def _write(self, command: Callable[[Any], Any], durable: bool) -> Any:
        """Run ``command`` (a write); for a login's or logout's session, followed on the same
        connection by the ``WAIT`` of ``WIKIMEDIA_REDIS_WAIT_REPLICAS`` (store.Durability)."""
        durability = current_app.extensions.get(_DURABILITY) if durable else None
        if durability is None:
            return command(self.client)
        if durability.replicas <= 0 or isinstance(self.client, RedisCluster):
            return command(self.client)
        with self.client.pipeline(transaction=False) as pipe:
            command(pipe)
            durability.add_to(pipe)
            result, acknowledged = pipe.execute()
        durability.check(acknowledged, "a session change at login or logout")
        return result

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        if not isinstance(session, SafeRedisSession) or session.store_unavailable:
            return  # nothing was read, so nothing may be written over what Redis holds
        if not (session.accessed or session.modified):
            return  # health checks, static files: no Redis write, no cookie
        name = self.get_cookie_name(app)
        cookie_flags: dict[str, Any] = {
            "domain": self.get_cookie_domain(app),
            "path": self.get_cookie_path(app),
            "secure": self.get_cookie_secure(app),
            "httponly": self.get_cookie_httponly(app),
            "samesite": self.get_cookie_samesite(app),
        }
        store_id = self._get_store_id(session.sid)
        if session.accessed:
            response.vary.add("Cookie")
        ttl = int(app.permanent_session_lifetime.total_seconds())
        try:
            if not session:
                if session.modified:
                    if session.stored:
                        self._end(store_id, ttl)
                    response.delete_cookie(name, **cookie_flags)
                    response.vary.add("Cookie")
                return
            if session.modified:
                value = self.seal(store_id, dict(session))
                # XX: only if still there, so a logout that happened meanwhile stays done.
                stored = session.stored
                if not self._write(
                    lambda pipe: pipe.set(store_id, value, ex=ttl, xx=stored), session.durable
                ):
                    log.info("session deleted while this request ran; not writing it back")
                    return
            elif app.config["SESSION_REFRESH_EACH_REQUEST"]:
                remaining = session.remaining_ms
                stale = remaining is None or remaining < ttl * 1000 * (1 - REFRESH_SLACK)
                if stale and not self.client.expire(store_id, ttl):
                    return
            else:
                return
        except REDIS_TROUBLE as exc:
            log.warning("session store unavailable while saving a session: %r", exc)
            _become_store_unavailable_page(app, response)
            return
        if not self.should_set_cookie(app, session):
            return
        response.set_cookie(
            name,
            session.sid,
            expires=self.get_expiration_time(app, session),
            **cookie_flags,
        )
        response.vary.add("Cookie")


def read_logins_with_sessions(
    app: Flask, client: RedisClient, login_keys: Callable[[str], list[str]]
) -> None:
    """Read the login record bound to a session in the session's own round trip.

    ``login_keys(tag)`` names the record and its tombstone, on ``client``'s Redis, for the
    session whose key digest is ``tag`` (``RedisLoginStore.session_keys``); they carry
    ``{tag}`` as their hash tag. Called by ``Wikimedia.init_app``; the session interface uses
    it only if its own client is on the same server and database (checked once, at its first
    request, whichever of the two was set up first).
    """
    app.extensions[_LOGIN_KEYS] = (client, login_keys)


def wait_for_replicas(app: Flask, durability: Durability) -> None:
    """Make the session writes of a login or logout ``WAIT`` as ``durability`` says (the
    ``WIKIMEDIA_REDIS_WAIT_*`` settings, parsed by ``flask_wikimedia.settings``; called by
    ``Wikimedia.init_app``). Never on a Redis Cluster (the settings refuse it there)."""
    app.extensions[_DURABILITY] = durability


def _same_server(client: RedisClient, other: RedisClient) -> bool:
    """True if both clients talk to the same Redis server and database, or to the same Redis
    Cluster (one node in common: a node belongs to one cluster). On a cluster the session's
    keys and its login's keys share a hash tag, so one script may read all four."""
    if other is client:
        return True
    if isinstance(client, RedisCluster) or isinstance(other, RedisCluster):
        if not (isinstance(client, RedisCluster) and isinstance(other, RedisCluster)):
            return False
        return bool(_node_names(client) & _node_names(other))
    # A Sentinel-managed client's kwargs name no host: its pool's service name says which
    # primary it follows (two clients of one Sentinel group may follow different primaries).
    if getattr(client.connection_pool, "service_name", None) != getattr(
        other.connection_pool, "service_name", None
    ):
        return False
    ours = client.connection_pool.connection_kwargs
    theirs = other.connection_pool.connection_kwargs
    return all(ours.get(k) == theirs.get(k) for k in ("host", "port", "path", "db"))


def _node_names(client: RedisCluster) -> set[str]:
    """``host:port`` of every node a cluster client knows (from its startup nodes, too)."""
    nodes = client.get_nodes()  # type: ignore[no-untyped-call]
    return {node.name for node in nodes} | set(client.nodes_manager.startup_nodes)


def _become_store_unavailable_page(app: Flask, response: Response) -> None:
    """Turn a finished response into the app's 503 page (the view already ran)."""
    try:
        page = app.make_response(app.handle_user_exception(StoreUnavailable()))
        body, status = page.get_data(), page.status
        headers = {
            key: page.headers[key]
            for key in ("Content-Type", "Retry-After", "Cache-Control")
            if key in page.headers
        }
    except Exception:  # the page itself failed to render: plain text still beats a 500
        log.exception("could not render the store-unavailable page")
        body, status = b"Temporarily unavailable. Please try again in a minute.\n", "503"
        headers = {"Content-Type": "text/plain; charset=utf-8", "Retry-After": "10"}
    for key in ("Location", "ETag", "Last-Modified", "Content-Disposition", "Content-Encoding"):
        response.headers.pop(key, None)
    response.direct_passthrough = False
    response.status = status
    response.set_data(body)
    response.headers.update(headers)
    response.headers["Cache-Control"] = "no-store"


def use_redis_sessions(
    app: Flask,
    client: RedisClient,
    key_prefix: str,
    *,
    exempt_endpoints: Iterable[str] = ("static",),
) -> SafeRedisSessionInterface:
    """Keep ``app``'s sessions in Redis under ``key_prefix``, sealed, with a 503 for trouble.

    Call it after ``SECRET_KEY`` is set and before ``Wikimedia(app)``: it also sets
    ``SESSION_TYPE``, ``SESSION_REDIS`` and ``SESSION_KEY_PREFIX`` (unless already set), so the
    login records share the client and get ``WIKIMEDIA_KEY_PREFIX`` derived from the prefix.

    ``exempt_endpoints`` are served even when Redis is down (with an empty session that is never
    saved): static files and health checks, which must not use the session anyway.
    """
    app.config.setdefault("SESSION_TYPE", "redis")
    app.config.setdefault("SESSION_REDIS", client)
    app.config.setdefault("SESSION_KEY_PREFIX", key_prefix)
    interface = SafeRedisSessionInterface(
        app,
        bounded_client(client),
        key_prefix,
        permanent=bool(app.config.get("SESSION_PERMANENT", True)),
    )
    app.session_interface = interface
    _refuse_without_store(app, frozenset(exempt_endpoints))
    return interface


_HOOK = "flask_wikimedia.sessions.refusal"


def _refuse_without_store(app: Flask, exempt: frozenset[str]) -> None:
    """Install (once per app) the hook that turns "session store unavailable" into a 503."""
    app.extensions[_HOOK] = exempt
    funcs = app.before_request_funcs.setdefault(None, [])
    if any(getattr(f, "__name__", "") == "refuse_without_store" for f in funcs):
        return

    def refuse_without_store() -> None:
        if request.environ.get(_UNAVAILABLE) and request.endpoint not in app.extensions[_HOOK]:
            raise StoreUnavailable()

    # First in line, so that no other hook (CSRF checks, login loading) sees the empty session.
    funcs.insert(0, refuse_without_store)


def _harden(app: Flask) -> None:
    current: Any = app.session_interface  # Flask-Session is untyped
    if isinstance(current, SafeRedisSessionInterface) or not isinstance(
        current, RedisSessionInterface
    ):
        return
    # Flask-Session's own Redis interface: the same client, prefix and lifetime settings,
    # behind our interface (sealed values, digested key names, a 503 for Redis trouble).
    # Sessions it stored read as "no session" (their values were not sealed by us).
    client = current.client
    configured = app.config.get("SESSION_REDIS")
    if isinstance(configured, RedisCluster):
        # Flask-Session replaced the cluster client it does not know by one for localhost.
        client = configured
    app.session_interface = SafeRedisSessionInterface(
        app,
        bounded_client(client),
        current.key_prefix,
        permanent=bool(current.permanent),
        sid_length=int(current.sid_length),
    )
    log.info("Flask-Wikimedia: Flask-Session's Redis sessions are sealed and fail fast")
    _refuse_without_store(app, app.extensions.get(_HOOK, frozenset({"static"})))


class _HardenLate:
    """WSGI middleware: harden a Flask-Session interface installed after ``Wikimedia(app)``.

    Flask opens the session inside ``app.wsgi_app``, so checking here, before each request,
    catches ``Session(app)`` called after ``init_app`` (one ``isinstance`` per request).
    """

    def __init__(self, app: Flask, wsgi_app: Callable[..., Any]) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if not isinstance(self.app.session_interface, SafeRedisSessionInterface) and isinstance(
            self.app.session_interface, RedisSessionInterface
        ):
            with self.lock:
                _harden(self.app)
        return self.wsgi_app(environ, start_response)


def harden_sessions(app: Flask) -> None:
    """Make whatever Redis session interface ``app`` has (now or later) hold invariants 7 and 11.

    Called by ``Wikimedia.init_app``. Flask-Session's ``RedisSessionInterface`` (installed by
    ``Session(app)`` with ``SESSION_TYPE = "redis"``, before or after this call) is replaced by
    :class:`SafeRedisSessionInterface` on a :func:`bounded_client` copy of its client. Other
    interfaces (Flask's signed cookie, ours) are left as they are.
    """
    _harden(app)
    if not isinstance(app.session_interface, SafeRedisSessionInterface):
        app.wsgi_app = _HardenLate(app, app.wsgi_app)  # type: ignore[method-assign]
