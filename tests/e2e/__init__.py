"""End-to-end tests: real servers on loopback driven by a real browser (chromium)."""
