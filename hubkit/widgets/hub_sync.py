"""Hub sync: pull what the hub holds, plan the diff against the store, apply it item by item.

:func:`connect_hub` decides where to talk to: the hub named by ``HUBKIT_HUB_URL`` (token
from ``HUBKIT_HUB_TOKEN``, via :meth:`HubClient.from_settings`) or, when that is unset,
the bundled local hub started on 127.0.0.1 (:func:`hubkit.localhub.process.start_local_hub`).
:class:`HubSyncState` runs :func:`~hubkit.hub.pull.pull`, :func:`~hubkit.hub.plan.plan`
and :func:`~hubkit.hub.apply.apply` — a dry run unless turned off — and keeps their
results; :class:`HubSyncApp` draws them. The token lives only inside the client factory:
never on the state, never in a widget (plans and results show masked keys only).
"""

from __future__ import annotations

import atexit
import html
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pandas as pd

import hubkit.hub as hub_package
from hubkit.config import EnvironmentSettings, get_settings
from hubkit.domain import parse_csv_list
from hubkit.errors import ValidationError
from hubkit.hub.apply import ApplyReport, ItemStatus, apply
from hubkit.hub.client import HubClient
from hubkit.hub.plan import Plan, plan
from hubkit.hub.progress import PushProgress
from hubkit.hub.pull import HubState, pull
from hubkit.hub.redact import redact_url
from hubkit.store import Store
from hubkit.widgets._common import (
    AppState,
    Message,
    Progress,
    ProgressBar,
    counted,
    frame_html,
    heading,
    message_area,
    show_message,
    text_input,
)
from hubkit.widgets._review_table import ReviewTable

ClientFactory = Callable[[], HubClient]

# what a reviewer judges first: what happens to which item, and how it changes
PLAN_COLUMNS = {"action": "action", "kind": "kind", "target": "target",
                "changes": "changes (old → new)", "reason": "why"}  # fmt: skip
RESULT_COLUMNS = {"kind": "kind", "action": "action", "target": "target", "status": "status",
                  "message": "result"}  # fmt: skip
HUB_PROVIDER_COLUMNS = {"name": "provider", "display_name": "display name", "base_url": "base URL",
                        "enabled": "enabled", "credentials": "keys", "rates": "rates"}  # fmt: skip


class HubConnection:
    """Where the app syncs to: a client factory, the hub's redacted URL, and whether the
    bundled local hub was started for it (then :meth:`close` stops it)."""

    def __init__(self, factory: ClientFactory, hub: str, description: str,
                 local: Any = None) -> None:  # fmt: skip
        self.factory = factory
        self.hub = hub
        self.description = description
        self.local = local  # a LocalHubProcess, or None for a configured hub

    def __repr__(self) -> str:
        kind = "local" if self.local is not None else "configured"
        return f"HubConnection({kind} hub {self.hub!r})"

    @property
    def is_local(self) -> bool:
        return self.local is not None

    def close(self) -> None:
        if self.local is not None:
            self.local.stop()


def connect_hub(settings: EnvironmentSettings | None = None) -> HubConnection:
    """The configured hub (HUBKIT_HUB_URL + HUBKIT_HUB_TOKEN), else a local hub started now."""
    settings = settings or get_settings()
    if settings.hub_url:
        hub = redact_url(settings.hub_url)
        token = "set" if settings.hub_token else "NOT set — set HUBKIT_HUB_TOKEN"
        return HubConnection(
            lambda: HubClient.from_settings(settings),
            hub,
            f"HUBKIT_HUB_URL is set: syncing with {hub} (admin token from HUBKIT_HUB_TOKEN: "
            f"{token})",
        )
    # through the hub package's lazy door: the local hub's starter loads only now
    local = hub_package.start_local_hub()
    # The server also exits with its parent; this also removes its temporary data folder.
    atexit.register(local.stop)
    return HubConnection(
        partial(HubClient, local.url, local.token),
        redact_url(local.url),
        f"HUBKIT_HUB_URL is not set: started the bundled local hub at {local.url} (a stand-in "
        "for AIGNE Hub on this machine; it starts empty and its data goes when the kernel "
        "stops). Set HUBKIT_HUB_URL and HUBKIT_HUB_TOKEN to sync with a real hub.",
        local=local,
    )


class HubSyncState(AppState):
    """Pull, plan and apply against one hub; dry run by default."""

    def __init__(self, store: Store, connection: HubConnection | ClientFactory) -> None:
        super().__init__()
        self.store = store
        if not isinstance(connection, HubConnection):
            connection = HubConnection(connection, "", "a hub client given by the caller")
        self.connection = connection
        self.dry_run = True
        self.deletes = False
        self.providers: tuple[str, ...] = ()
        self.hub_state: HubState | None = None
        self.hub_read_at: datetime | None = None
        #: the last push's items done / total, rate, time left and failures
        self.push_progress: PushProgress | None = None
        self.plan: Plan | None = None
        self.report: ApplyReport | None = None
        self.report_folder: Path | None = None

    # ---- options -------------------------------------------------------------------------
    def set_dry_run(self, dry_run: bool) -> None:
        self.dry_run = bool(dry_run)

    def set_deletes(self, deletes: bool) -> None:
        """Also plan deletes of hub rates/keys the store lacks (a new plan is needed)."""
        self.deletes = bool(deletes)

    def set_providers(self, providers: str | tuple[str, ...] | list[str] | None) -> bool:
        ok, names = self._attempt(lambda: tuple(p.lower() for p in parse_csv_list(providers)))
        if not ok or names is None:
            return False
        self.providers = names
        return True

    # ---- actions -------------------------------------------------------------------------
    def pull(self, progress: Progress | None = None) -> bool:
        """Read the hub's providers, masked keys and rates (one request)."""
        if progress:
            progress(0, 1)
        ok, state = self._attempt(lambda: self._with_client(pull))
        if progress:
            progress(1, 1)
        if not ok or state is None:
            return False
        self.hub_state, self.hub_read_at = state, datetime.now(UTC)
        self._say(Message.info(f"pulled {state.hub}: {self.hub_summary()}"))
        return True

    def make_plan(self, progress: Progress | None = None) -> bool:
        """Pull the hub again and diff the store against it (reads only)."""
        if not self.pull(progress):
            return False
        state = self.hub_state
        assert state is not None  # a pull that succeeded set it
        ok, made = self._attempt(
            lambda: plan(self.store, state, deletes=self.deletes, providers=self.providers or None)
        )
        if not ok or made is None:
            return False
        self.plan, self.report, self.report_folder = made, None, None
        if made.is_empty:
            self._say(
                Message.success(f"nothing to do: the hub matches the store ({made.summary()})")
            )
        else:
            self._say(Message.info(f"plan: {made.summary()}"))
        return True

    def apply(self, progress: Progress | None = None) -> bool:
        """Carry out the plan item by item (``progress(done, total)`` after each), save the
        report to ``reports/``; after a real apply, plan again to show what is left."""
        current = self.plan
        if current is None:
            self._fail(ValidationError("make a plan first", field="plan"))
            return False
        if not self.dry_run and self.store.read_only:
            self._fail(ValidationError("the store is read-only: only dry runs are possible"))
            return False
        dry_run = self.dry_run
        tracker = self.push_progress = PushProgress()
        ok, report = self._attempt(
            lambda: self._with_client(
                lambda c: apply(
                    current,
                    self.store,
                    c,
                    dry_run=dry_run,
                    progress=_both(tracker, progress),
                    on_result=tracker.result,
                )
            )
        )
        if not ok or report is None:
            return False
        ok, folder = self._attempt(report.save)
        self.report, self.report_folder = report, folder if ok else None
        failed = report.count(ItemStatus.FAILED) > 0
        text = f"{report.summary()}" + (f" — report: {folder}" if ok else "")
        if not dry_run:
            remaining = self._replan_quietly()
            text += f"; fresh plan: {remaining}"
        self._say(Message.error(text) if failed else Message.success(text))
        return not failed

    def _replan_quietly(self) -> str:
        """Pull again and plan against what the hub now holds: every panel shows the state
        after the apply (the hub panel too, with the time it was read)."""
        try:
            with self.connection.factory() as client:
                state = pull(client)
            fresh = plan(self.store, state, deletes=self.deletes,
                         providers=self.providers or None)  # fmt: skip
        except Exception as exc:  # the report stands; the next Plan click will say more
            return f"could not plan again ({type(exc).__name__})"
        self.hub_state, self.hub_read_at = state, datetime.now(UTC)
        self.plan = fresh
        return "nothing left to do" if fresh.is_empty else fresh.summary()

    def progress_text(self) -> str:
        return "" if self.push_progress is None else self.push_progress.text()

    def _with_client(self, work: Callable[[HubClient], Any]) -> Any:
        with self.connection.factory() as client:
            return work(client)

    # ---- tables --------------------------------------------------------------------------
    def hub_summary(self) -> str:
        s = self.hub_state
        if s is None:
            return "not pulled yet"
        when = f" (read {self.hub_read_at:%H:%M:%S} UTC)" if self.hub_read_at else ""
        return (
            f"{counted(len(s.providers), 'provider')}, {counted(len(s.credentials), 'key')} "
            f"(masked), {counted(len(s.rates), 'rate')}{when}"
        )

    def hub_providers_table(self) -> pd.DataFrame:
        if self.hub_state is None:
            return pd.DataFrame(columns=list(HUB_PROVIDER_COLUMNS))
        return self.hub_state.to_frames()["providers"]

    def plan_table(self) -> pd.DataFrame:
        if self.plan is None:
            return pd.DataFrame(columns=list(PLAN_COLUMNS))
        return self.plan.to_frame()

    def results_table(self) -> pd.DataFrame:
        if self.report is None:
            return pd.DataFrame(columns=list(RESULT_COLUMNS))
        return self.report.to_frame()


# ==== the view =============================================================================


_NOT_SHOWN = object()


class HubSyncApp(widgets.VBox):
    """Pull / plan / apply with a dry-run switch. ``HubSyncApp(store, connect_hub())``."""

    def __init__(
        self,
        store: Store,
        connection: HubConnection | ClientFactory | None = None,
        *,
        state: HubSyncState | None = None,
    ) -> None:
        if state is None:
            state = HubSyncState(store, connection if connection is not None else connect_hub())
        self.state = state
        self._shown_plan: object = _NOT_SHOWN  # what the grids show, to send them only anew
        self._shown_report: object = _NOT_SHOWN
        self._where = widgets.HTML(
            f"<span style='color:#5f6368'>{html.escape(state.connection.description)}</span>"
        )
        self._pull = widgets.Button(description="Pull", icon="download")
        self._plan = widgets.Button(description="Plan", icon="list", button_style="info")
        self._deletes = widgets.Checkbox(value=False, description="plan deletes too")
        self._providers = text_input(
            "only providers", placeholder="all (or e.g. openai, anthropic)", width="400px"
        )
        self._hub = widgets.HTML()
        self._plan_summary = widgets.HTML()
        self._plan_table = ReviewTable(
            "hubkit-sync-plan-table", PLAN_COLUMNS, empty="nothing to do",
            download_name="hub-plan.csv", download_label="exactly what Apply would push",
            noun="item",
        )  # fmt: skip
        self._dry_run = widgets.Checkbox(value=True, description="dry run (write nothing)")
        self._apply = widgets.Button(description="Apply (dry run)", icon="play")
        self._progress = ProgressBar()
        self._progress_text = widgets.HTML()
        self._progress_text.add_class("hubkit-sync-progress")
        self._message = message_area()
        self._results = ReviewTable(
            "hubkit-sync-results", RESULT_COLUMNS, empty="", noun="item",
            download_name="hub-apply-results.csv", download_label="every item's outcome",
        )  # fmt: skip
        for w, cls in (
            (self._pull, "pull"), (self._plan, "plan"), (self._apply, "apply"),
            (self._dry_run, "dry-run"),
            (self._hub, "hub"), (self._message, "message"),
        ):  # fmt: skip
            w.add_class(f"hubkit-sync-{cls}")
        self._pull.on_click(self._on_pull)
        self._plan.on_click(self._on_plan)
        self._apply.on_click(self._on_apply)
        self._dry_run.observe(self._on_dry_run, names="value")
        self._deletes.observe(lambda c: self.state.set_deletes(c["new"]), names="value")
        self._providers.observe(lambda c: self.state.set_providers(c["new"]), names="value")
        self.add_class("hubkit-sync")
        super().__init__(
            [
                heading("Hub sync: pull, plan, apply"),
                self._where,
                widgets.HBox([self._pull, self._plan, self._deletes, self._providers]),
                self._hub,
                self._plan_summary,
                self._plan_table.box,
                widgets.HBox([self._dry_run, self._apply]),
                self._progress.bar,
                self._progress_text,
                self._message,
                self._results.box,
            ]
        )
        self._render()

    def _render(self) -> None:
        s = self.state
        hub_table = ""
        if s.hub_state is not None:
            hub_table = frame_html(
                s.hub_providers_table(),
                columns=HUB_PROVIDER_COLUMNS,
                height="200px",
                empty="the hub holds no provider yet",
            )
        self._hub.value = f"<b>Hub</b>: {html.escape(s.hub_summary())}{hub_table}"
        self._apply.disabled = s.plan is None or s.plan.is_empty
        self._apply.description = "Apply (dry run)" if s.dry_run else "Apply to the hub"
        self._apply.button_style = "" if s.dry_run else "danger"
        show_message(self._message, s.message)
        # the grids last: 10,000 rows take a while, and are sent again only when they change
        # (ticking "dry run" redraws the button, not the plan)
        if s.plan is not self._shown_plan:
            self._shown_plan = s.plan
            if s.plan is None:
                self._plan_summary.value = "<b>Plan</b>: none yet — click <i>Plan</i>"
                self._plan_table.show(pd.DataFrame())
                self._plan_table.note.value = ""
            else:
                self._plan_summary.value = f"<b>Plan</b>: {html.escape(s.plan.summary())}"
                self._plan_table.show(s.plan_table())
        if s.report is not self._shown_report:
            self._shown_report = s.report
            self._results.show(s.results_table())
            if s.report is not None:
                self._results.note.value = f"<b>Results</b>: {self._results.note.value}"

    def _run(self, label: str, work: Callable[[Progress], Any], total: int = 1) -> None:
        with self._progress.showing(label, total) as report:
            work(report)
        self._render()

    def _on_pull(self, _: widgets.Button) -> None:
        self._run("pulling", self.state.pull)

    def _on_plan(self, _: widgets.Button) -> None:
        self._run("planning", self.state.make_plan)

    def _on_apply(self, _: widgets.Button) -> None:
        total = len(self.state.plan.items) if self.state.plan else 1

        def work(report: Progress) -> None:
            def both(done: int, all_: int) -> None:
                report(done, all_)
                self._progress_text.value = html.escape(self.state.progress_text())

            self.state.apply(both)

        self._run("applying", work, total)

    def _on_dry_run(self, change: dict[str, Any]) -> None:
        self.state.set_dry_run(change["new"])
        self._render()


def _both(tracker: PushProgress, progress: Progress | None) -> Progress:
    def report(done: int, total: int) -> None:
        tracker(done, total)
        if progress is not None:
            progress(done, total)

    return report
