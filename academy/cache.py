"""Django's Redis cache, minus a cost paid on every call."""

from __future__ import annotations

from typing import Any

from django.core.cache.backends import redis as django_redis


class _ClientReusingRedisCacheClient(django_redis.RedisCacheClient):
    """Django builds a new `redis.Redis` for every cache call (~70 µs, more than the
    round trip to Redis itself); one per connection pool is enough, since a redis-py
    client holds no state of its own between commands and is safe to share across
    threads (connections come from the pool for each command)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]  # private API, pinned by tests
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)  # type: ignore[attr-defined]
        return client


class RedisCache(django_redis.RedisCache):
    """`django.core.cache.backends.redis.RedisCache` with its clients reused."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = _ClientReusingRedisCacheClient
