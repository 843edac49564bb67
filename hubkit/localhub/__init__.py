"""The bundled local hub: an independent stand-in for AIGNE Hub's admin API on 127.0.0.1.

It imitates the gateway for tests, demos and notebooks, so it keeps its **own** copy of the
gateway's rules (:mod:`~hubkit.localhub.rules`: margin rate, default display name, masking,
the Joi enumerations; :mod:`~hubkit.localhub.validation`: Joi's messages), written from the
gateway's documented behaviour. Nothing here imports hubkit's rules (pricing, domain,
decimals) or its client (:mod:`hubkit.hub`): a client test against this hub compares two
independent implementations, and catches hubkit being wrong about the gateway.

- :mod:`~hubkit.localhub.app` — the Starlette app: admin routes over the state.
- :mod:`~hubkit.localhub.state` — :class:`~hubkit.localhub.state.LocalHubState`, the data
  in one JSON file (keys Fernet-sealed).
- :mod:`~hubkit.localhub.validation` — Joi-style request checks and their 400 messages.
- :mod:`~hubkit.localhub.bulk` — ``bulk-rate-update``, margin and sync modes.
- :mod:`~hubkit.localhub.faults` — test-only switches (faults, reset, counters), mounted
  only with ``--test-faults``.
- :mod:`~hubkit.localhub.routing` — JSON in/out, the bearer check, error answers.
- :mod:`~hubkit.localhub.process` — run it: :func:`serve` here, :func:`start_local_hub` in
  a subprocess, ``python -m hubkit.localhub``. The only module the client package reaches,
  and only when a hub is started.
"""

from __future__ import annotations

from hubkit.localhub.process import LocalHubProcess, serve, start_local_hub

__all__ = ["LocalHubProcess", "serve", "start_local_hub"]
