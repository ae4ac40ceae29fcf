"""Redis: the connection today; cache-aside, invalidation and TTLs arrive with the caching issue."""
