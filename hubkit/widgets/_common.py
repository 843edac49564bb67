"""Small pieces every workbench app shares: messages, HTML tables, progress, widget walks.

The pure half (:class:`Message`, :func:`frame_html`, :class:`AppState`) is what the state
classes use; the widget half (:func:`message_area`, :class:`ProgressBar`,
:func:`iter_widgets`, :func:`text_input`) is what the thin views use.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, TypeVar

import ipywidgets as widgets
import pandas as pd

from hubkit.decimals import plain
from hubkit.errors import HubkitError
from hubkit.pricing import ALLOW_ZERO_RATES_HINT
from hubkit.store import OperatorSettings

#: ``progress(done, total)``: how long work reports how far it got (the views draw a bar).
Progress = Callable[[int, int], None]

T = TypeVar("T")


class Level(StrEnum):
    INFO = "info"
    SUCCESS = "success"
    WARNING = "warning"
    ERROR = "error"


_COLOURS = {
    Level.INFO: ("#0b5394", "#e8f0fe"),
    Level.SUCCESS: ("#1e6b30", "#e6f4ea"),
    Level.WARNING: ("#7a4f01", "#fef7e0"),
    Level.ERROR: ("#a50e0e", "#fce8e6"),
}


@dataclass(frozen=True, slots=True)
class Message:
    """What an action says to the person who clicked: one line, a level."""

    level: Level
    text: str

    @classmethod
    def info(cls, text: str) -> Message:
        return cls(Level.INFO, text)

    @classmethod
    def success(cls, text: str) -> Message:
        return cls(Level.SUCCESS, text)

    @classmethod
    def warning(cls, text: str) -> Message:
        return cls(Level.WARNING, text)

    @classmethod
    def error(cls, text: str) -> Message:
        return cls(Level.ERROR, text)

    @property
    def is_error(self) -> bool:
        return self.level is Level.ERROR


#: API fields and CLI/job switches that rules name in their errors, as the apps label them.
#: Longest first: a phrase is replaced before any word inside it.
_SCREEN_WORDS = (
    (ALLOW_ZERO_RATES_HINT, "to make them free on purpose, tick the confirmation box"),
    ("(create it with custom=True / --custom to add your own)",
     "(tick 'custom (not a known provider)' to add your own)"),
    ("profitMargin", "margin"),
    ("creditPrice", "credit price"),
    ("baseUrl", "base URL"),
    ("unitCosts", "unit costs"),
    ("inputRate", "input rate"),
    ("outputRate", "output rate"),
)  # fmt: skip


def on_screen(text: str) -> str:
    """A rule's message in the words of the screen: the label a person sees, not the API
    field or the command-line switch the same rule names elsewhere."""
    for theirs, ours in _SCREEN_WORDS:
        text = text.replace(theirs, ours)
    return text


def message_html(message: Message | None) -> str:
    if message is None:
        return ""
    fg, bg = _COLOURS[message.level]
    return (
        f'<div class="hubkit-message hubkit-{message.level.value}" style="color:{fg};'
        f'background:{bg};padding:4px 8px;border-radius:4px">'
        f"{html.escape(on_screen(message.text))}</div>"
    )


class PriceInputs:
    """The margin % and credit price a person types, for states that reprice with them.

    The texts are what counts (exact, as typed); ``margin`` / ``credit_price`` read them
    as Decimals, None while a text is not (yet) a finite number.
    """

    margin_text: str
    credit_price_text: str

    def _start_from(self, ops: OperatorSettings) -> None:
        """Begin at the stored settings (0 % and a price of 1 when none are stored)."""
        self.margin_text = plain(ops.target_margin) or "0"
        self.credit_price_text = plain(ops.credit_price) or "1"

    @property
    def margin(self) -> Decimal | None:
        return decimal_or_none(self.margin_text)

    @property
    def credit_price(self) -> Decimal | None:
        return decimal_or_none(self.credit_price_text)


class AppState:
    """Base of the apps' state classes: runs actions, turns HubkitErrors into messages.

    ``message`` is the outcome of the last action, ``error`` the exception behind an error
    message (the views use its type, e.g. to offer "reload" after a stale-version error).
    """

    def __init__(self) -> None:
        self.message: Message | None = None
        self.error: HubkitError | None = None

    def _say(self, message: Message) -> None:
        self.message = message
        self.error = None

    def _fail(self, exc: HubkitError, *, redact: Iterable[str] = ()) -> None:
        text = str(exc)
        for secret in redact:
            if secret:
                text = text.replace(secret, "***")
        self.message = Message.error(text)
        self.error = exc

    def _attempt(
        self, action: Callable[[], T], *, redact: Iterable[str] = ()
    ) -> tuple[bool, T | None]:
        """Run ``action``; a HubkitError becomes the error message (nothing raised)."""
        secrets = tuple(redact)
        try:
            return True, action()
        except HubkitError as exc:
            self._fail(exc, redact=secrets)
            return False, None


# ---- tables -------------------------------------------------------------------------------


def cell_text(value: Any) -> str:
    """A table cell as text: Decimals plain (never ``8E-8``), empty for missing values."""
    if value is None or value is pd.NaT:
        return ""
    if isinstance(value, Decimal):
        return plain(value) or "0"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):  # pd.Timestamp is one too
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float) and pd.isna(value):
        return ""
    if isinstance(value, StrEnum):
        return value.value
    return str(value)


def frame_html(
    frame: pd.DataFrame,
    *,
    columns: Mapping[str, str] | None = None,
    max_rows: int = 200,
    css_class: str = "hubkit-table",
    empty: str = "nothing to show",
    height: str = "360px",
) -> str:
    """A DataFrame as a scrollable, escaped HTML table.

    ``columns`` picks and labels the columns shown (source name → label), in that order.
    """
    if frame.empty:
        return f'<p class="{css_class} hubkit-empty"><i>{html.escape(empty)}</i></p>'
    shown = frame.head(max_rows)
    if columns is not None:
        shown = shown[[c for c in columns if c in shown.columns]].rename(columns=dict(columns))
    texts = [[html.escape(cell_text(v)) for v in row] for row in shown.itertuples(index=False)]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = "".join("<tr>" + "".join(f"<td>{t}</td>" for t in row) + "</tr>" for row in texts)
    note = ""
    if len(frame) > max_rows:
        note = f"<p><i>showing the first {max_rows} of {len(frame)} rows</i></p>"
    return (
        f"<style>{_TABLE_CSS}</style>"
        f'<div style="max-height:{height};overflow:auto">'
        f'<table class="{css_class}" style="border-collapse:collapse;font-size:12px">'
        f'<thead style="position:sticky;top:0;background:#f5f5f5"><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>{note}"
    )


_TABLE_CSS = (
    ".hubkit-table th,.hubkit-table td{padding:2px 10px;text-align:left;white-space:nowrap}"
    ".hubkit-table tbody tr:nth-child(even){background:#fafafa}"
)


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``1 rate``, ``2 rates``, ``0 rates`` (thousands separated)."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def counting(
    items: Iterable[T], total: int, progress: Progress | None, every: int = 250
) -> Iterator[T]:
    """Yield ``items`` and report ``progress(done, total)`` every ``every`` items and at the end."""
    done = 0
    for item in items:
        yield item
        done += 1
        if progress is not None and done % every == 0:
            progress(done, total)
    if progress is not None:
        progress(done, total)


# ---- widgets ------------------------------------------------------------------------------


def message_area() -> widgets.HTML:
    return widgets.HTML(value="", layout=widgets.Layout(min_height="24px"))


def show_message(area: widgets.HTML, message: Message | None) -> None:
    area.value = message_html(message)


def field_error(area: widgets.HTML, text: str | None) -> None:
    """An inline validation message next to one form field."""
    area.value = (
        ""
        if not text
        else f'<span style="color:#a50e0e;font-size:12px">{html.escape(on_screen(text))}</span>'
    )


def gate(
    button: widgets.Button, why_area: widgets.HTML, why: str | None, *, ready: str, prefix: str = ""
) -> None:
    """A button enabled only when nothing blocks it; what blocks it is said beside it."""
    button.disabled = why is not None
    button.tooltip = why or ready
    why_area.value = "" if why is None else f"<i>{html.escape(prefix + why)}</i>"


def text_input(
    description: str, value: str = "", *, placeholder: str = "", width: str = "340px"
) -> widgets.Text:
    return widgets.Text(
        value=value,
        description=description,
        placeholder=placeholder,
        style={"description_width": "130px"},
        layout=widgets.Layout(width=width),
    )


def heading(text: str) -> widgets.HTML:
    return widgets.HTML(f"<h3 style='margin:6px 0'>{html.escape(text)}</h3>")


class ProgressBar:
    """An IntProgress shown only while work runs; its ``report`` is a :data:`Progress`."""

    def __init__(self, description: str = "working") -> None:
        self.bar = widgets.IntProgress(
            value=0, min=0, max=1, description=description, layout=widgets.Layout(display="none")
        )

    def start(self, description: str, total: int = 1) -> None:
        self.bar.description = description
        self.bar.max = max(total, 1)
        self.bar.value = 0
        self.bar.layout.display = ""

    def report(self, done: int, total: int) -> None:
        self.bar.max = max(total, 1)
        self.bar.value = min(done, self.bar.max)

    def finish(self) -> None:
        self.bar.value = self.bar.max
        self.bar.layout.display = "none"

    @contextmanager
    def showing(self, description: str, total: int = 1) -> Iterator[Progress]:
        """``with bar.showing("exporting", 4) as report:`` the bar shows until the block ends
        (whether it returns or raises)."""
        self.start(description, total)
        try:
            yield self.report
        finally:
            self.finish()


def iter_widgets(root: widgets.Widget) -> Iterator[widgets.Widget]:
    """Every widget reachable from ``root`` (children, layouts, styles, any widget trait)."""
    seen: set[str] = set()
    stack: list[Any] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, list | tuple):
            stack.extend(item)
            continue
        if not isinstance(item, widgets.Widget) or item.model_id in seen:
            continue
        seen.add(item.model_id)
        yield item
        for name in item.keys:
            stack.append(getattr(item, name, None))


def options_for(names: Iterable[str], *, blank: str | None = None) -> list[tuple[str, str]]:
    """Dropdown options; ``blank`` adds a first entry whose value is ``""``."""
    out = [(blank, "")] if blank is not None else []
    return out + [(n, n) for n in names]


def slider_text(value: float, step: float) -> str:
    """A slider's float as the exact text it stands for, at the slider's step precision."""
    exponent = Decimal(str(step)).normalize().as_tuple().exponent
    places = max(0, -exponent) if isinstance(exponent, int) else 0  # str: a NaN/inf step
    return plain(Decimal(f"{value:.{places}f}")) or "0"


class ExactSlider:
    """A float slider and an exact Text kept in step; the Text is the value that counts."""

    def __init__(self, slider: widgets.FloatSlider | widgets.FloatLogSlider, text: widgets.Text,
                 step: float) -> None:  # fmt: skip
        self.slider, self.text, self.step = slider, text, step
        self._syncing = False
        slider.observe(self._from_slider, names="value")
        text.observe(self._from_text, names="value")

    def _from_slider(self, change: dict[str, Any]) -> None:
        if not self._syncing:
            self._syncing = True
            try:
                self.text.value = slider_text(change["new"], self.step)
            finally:
                self._syncing = False

    def _from_text(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        number = decimal_or_none(change["new"])
        if number is None:
            return
        self._syncing = True  # the slider may clamp or round: never write that back
        try:
            self.slider.value = float(number)
        finally:
            self._syncing = False


def price_controls(
    state: PriceInputs, word: str, width: str
) -> tuple[widgets.FloatSlider, widgets.Text, widgets.FloatLogSlider, widgets.Text]:
    """The margin % and credit price inputs of a repricing app, kept in step.

    A slider beside an exact Text each (the Text is the value that counts, see
    :class:`ExactSlider`); ``word`` names the margin ("margin", or "markup" where the
    app says markup on cost). Returns (margin slider, margin text, price slider, price text).
    """
    margin_slider = widgets.FloatSlider(
        value=float(state.margin or 0), min=0, max=200, step=0.5, description=f"{word} %",
        continuous_update=False, readout_format=".1f",
    )  # fmt: skip
    margin_text = text_input(f"exact {word} %", state.margin_text, width=width)
    price_slider = widgets.FloatLogSlider(
        value=float(state.credit_price or 1), base=10, min=-5, max=1, step=0.05,
        description="credit price", continuous_update=False, readout_format=".5g",
    )  # fmt: skip
    price_text = text_input("exact credit price", state.credit_price_text, width=width)
    ExactSlider(margin_slider, margin_text, 0.5)  # the widgets' observers keep it alive
    ExactSlider(price_slider, price_text, 0.00001)
    return margin_slider, margin_text, price_slider, price_text


def decimal_or_none(text: str) -> Decimal | None:
    """The exact number a text field holds, or None while it is not (yet) a finite number."""
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None
