"""The HTTP service, its model bundle and backends, the request log and drift monitoring."""
