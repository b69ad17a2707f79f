"""What the tests share: routers, masters, PostgreSQL, proxies, waiting."""
