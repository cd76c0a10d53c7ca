"""Fixed-window rate limits kept in Django's cache.

With ACADEMY_CACHE_URL pointing at Redis every web process shares the counts; with the
default in-process cache each process counts on its own (fine for the embedded server).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from django.core.cache import cache
from django.utils.translation import gettext, ngettext


@dataclass(frozen=True)
class RateLimit:
    name: str
    limit: int
    window_seconds: int

    def _key(self, subject: str) -> tuple[str, int]:
        now = int(time.time())
        # Hashed: a subject may be any string a client sends (a username, an address).
        digest = hashlib.sha256(subject.encode("utf-8", "replace")).hexdigest()[:32]
        window = now // self.window_seconds
        return (
            f"ratelimit:{self.name}:{digest}:{window}",
            self.window_seconds - now % self.window_seconds,
        )

    def retry_after(self, subject: str) -> int | None:
        """Seconds until `subject` may try again, or None while it is within the limit."""
        key, remaining = self._key(subject)
        return remaining if (cache.get(key) or 0) >= self.limit else None

    def hit(self, subject: str) -> int | None:
        """Count one event; like `retry_after`, answers None while within the limit."""
        key, remaining = self._key(subject)
        if cache.add(key, 1, timeout=self.window_seconds + 1):
            count = 1
        else:
            try:
                count = cache.incr(key)
            except ValueError:  # expired between add() and incr()
                cache.set(key, 1, timeout=self.window_seconds + 1)
                count = 1
        return remaining if count > self.limit else None


def wait_phrase(seconds: int) -> str:
    minutes = -(-seconds // 60)
    if seconds < 60:
        return gettext("%(seconds)d s") % {"seconds": seconds}
    return ngettext("%(minutes)d minute", "%(minutes)d minutes", minutes) % {"minutes": minutes}
