"""``python -m hubkit.localhub``: serve the local hub (see :func:`hubkit.localhub.process.main`)."""

from __future__ import annotations

from hubkit.localhub.process import main

if __name__ == "__main__":
    raise SystemExit(main())
