"""Fault injection for the development wiki: what tests ask for (``wiki.inject_fault``), what the
endpoints consume (``take_fault``), and the kinds there are."""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = [
    "FAULT_ENDPOINTS",
    "FAULT_KINDS",
    "JWT_FAULTS",
    "PROFILE_ONLY_FAULTS",
    "Fault",
    "FaultInjection",
]

FAULT_ENDPOINTS = ("authorize", "token", "profile", "api", "rest", "initiate", "identify")
FAULT_KINDS = (
    "500",
    "503",
    "429",
    "hang",
    "garbage",
    "badjson",
    "oversized",
    "redirect",
    "wrongtypes",
    "missingfields",
)
PROFILE_ONLY_FAULTS = ("wrongtypes", "missingfields")
#: Faults of OAuth 1.0a's identify JWT (endpoint ``"identify"`` only): a wrong claim, an
#: expired or future token, a wrong signing key, ``alg: none`` or another algorithm.
JWT_FAULTS = (
    "jwt-aud",
    "jwt-iss",
    "jwt-nonce",
    "jwt-expired",
    "jwt-future",
    "jwt-signature",
    "jwt-alg-none",
    "jwt-alg-hs512",
)


@dataclass
class Fault:
    kind: str
    remaining: int
    delay: float


class FaultInjection:
    """The development wiki's queue of injected faults (a part of :class:`DevWiki`)."""

    lock: threading.RLock
    faults: dict[str, list[Fault]]
    _wake: threading.Event

    def inject_fault(self, endpoint: str, kind: str, times: int = 1, delay: float = 30.0) -> None:
        """Make the next ``times`` requests to ``endpoint`` fail in the way ``kind`` says.

        ``endpoint`` is ``"authorize"``, ``"token"``, ``"profile"`` (the profile and scopes
        resources), ``"api"`` (api.php) or ``"rest"`` (the core REST API, ``rest.php/v1``).
        ``kind`` is one of ``"500"``, ``"503"``, ``"429"`` (both with :attr:`retry_after`), ``"hang"`` (wait ``delay`` seconds, then answer
        normally; :meth:`clear_faults` and shutdown wake it), ``"garbage"``, ``"badjson"``,
        ``"oversized"``, ``"redirect"``, and for ``"profile"`` only ``"wrongtypes"`` and
        ``"missingfields"``. OAuth 1.0a adds the endpoints ``"initiate"`` and ``"identify"``
        (its token endpoint shares ``"token"``), and for ``"identify"`` the kinds in
        :data:`JWT_FAULTS`. Faults queue up in the order they were injected.
        """
        if endpoint not in FAULT_ENDPOINTS:
            raise ValueError(f"endpoint must be one of {FAULT_ENDPOINTS}, not {endpoint!r}")
        if kind in JWT_FAULTS and endpoint != "identify":
            raise ValueError(f"fault {kind!r} only applies to the identify endpoint")
        if kind not in FAULT_KINDS and kind not in JWT_FAULTS:
            raise ValueError(f"kind must be one of {FAULT_KINDS + JWT_FAULTS}, not {kind!r}")
        if kind in PROFILE_ONLY_FAULTS and endpoint != "profile":
            raise ValueError(f"fault {kind!r} only applies to the profile endpoint")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self.lock:
            self.faults.setdefault(endpoint, []).append(Fault(kind, times, delay))

    def clear_faults(self) -> None:
        """Remove every pending fault and wake requests that are hanging."""
        with self.lock:
            self.faults.clear()
            self._wake.set()
            self._wake = threading.Event()

    def take_fault(self, endpoint: str) -> Fault | None:
        """Consume one pending fault for ``endpoint`` (used by the views)."""
        with self.lock:
            queue = self.faults.get(endpoint)
            if not queue:
                return None
            fault = queue[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.pop(0)
            return Fault(fault.kind, 1, fault.delay)

    def hang(self, delay: float) -> None:
        """Sleep up to ``delay`` seconds, or until :meth:`clear_faults` / shutdown."""
        with self.lock:
            event = self._wake
        event.wait(delay)
