"""The workbench's shared pieces: seeding, the environment summary, HTML tables, messages."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from decimal import Decimal

import ipywidgets as widgets
import pandas as pd
import pytest

from hubkit.config import Settings
from hubkit.domain import ProviderSpec
from hubkit.store import Store
from hubkit.widgets import environment_summary, open_workbench_store, seed_sample_data
from hubkit.widgets._common import Message, cell_text, frame_html, iter_widgets, message_html


def test_seeding_fills_only_an_empty_store(sqlite_url: str) -> None:
    with Store.open(sqlite_url) as store:
        assert seed_sample_data(store) is True
        rates = store.list_rates()
        assert len(rates) > 100 and {"openai", "bedrock"} <= {
            p.name for p in store.list_providers()
        }
        history = store.history(limit=1)[0]
        assert history.change_type == "catalog_import"
        assert seed_sample_data(store) is False
        assert store.list_rates() == rates


def test_a_store_someone_started_is_never_seeded(sqlite_url: str) -> None:
    with Store.open(sqlite_url) as store:
        store.add_provider(ProviderSpec.create("ollama", base_url="http://127.0.0.1:11434"))
        assert seed_sample_data(store) is False
        assert store.list_rates() == []


def test_open_workbench_store_uses_the_settings(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBKIT_DATABASE_URL", sqlite_url)
    with open_workbench_store(seed_if_empty=False) as store:
        assert store.list_providers() == []
    with open_workbench_store() as store:
        assert store.list_providers()


def test_environment_summary_names_the_store_and_hides_secrets(sqlite_url: str) -> None:
    settings = Settings.from_env(
        {
            "HUBKIT_DATA_DIR": os.environ["HUBKIT_DATA_DIR"],
            "HUBKIT_DATABASE_URL": sqlite_url,
            "HUBKIT_HUB_URL": "https://admin:pa55word@hub.example.com:8443/base",
            "HUBKIT_HUB_TOKEN": "tok-very-secret-123",
            "HUBKIT_ACTOR": "ops",
        }
    )
    with Store.open(settings=settings) as store:
        text = environment_summary(store, settings)
    assert f"database:  {sqlite_url}" in text
    assert "https://***@hub.example.com:8443/base (token set)" in text
    assert "pa55word" not in text and "tok-very-secret-123" not in text
    assert "actor:     ops" in text


def test_environment_summary_survives_an_unparsable_hub_url_and_hides_its_password(
    sqlite_url: str,
) -> None:
    settings = Settings.from_env(
        {
            "HUBKIT_DATA_DIR": os.environ["HUBKIT_DATA_DIR"],
            "HUBKIT_DATABASE_URL": sqlite_url,
            "HUBKIT_HUB_URL": "http://admin:pa55word@[::1",
        }
    )
    with Store.open(settings=settings) as store:
        text = environment_summary(store, settings)
    assert "hub:       http://***@[::1 (token NOT set" in text and "pa55word" not in text


def test_frame_html_is_escaped_exact_and_bounded() -> None:
    frame = pd.DataFrame(
        {
            "model": ["<script>alert(1)</script>", "b", "c"],
            "rate": [Decimal("8E-8"), None, Decimal("1.50")],
            "below": [True, False, True],
        }
    )
    html = frame_html(frame, columns={"model": "model", "rate": "input rate"}, max_rows=2)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<td>0.00000008</td>" in html and "E-8" not in html
    assert "<th>input rate</th>" in html and "below" not in html
    assert "showing the first 2 of 3 rows" in html
    assert "nothing here" in frame_html(frame.iloc[0:0], empty="nothing here")


def test_cell_text() -> None:
    assert cell_text(Decimal("1.50")) == "1.5"
    assert cell_text(Decimal(0)) == "0"
    assert cell_text(None) == cell_text(pd.NaT) == cell_text(float("nan")) == ""
    assert cell_text(True) == "yes"
    assert cell_text(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2025-01-02 03:04:05"


def test_message_html_escapes() -> None:
    assert message_html(None) == ""
    html = message_html(Message.error("bad <b>"))
    assert "hubkit-error" in html and "&lt;b&gt;" in html


def test_iter_widgets_finds_nested_children_layouts_and_styles() -> None:
    inner = widgets.Password(value="x")
    root = widgets.VBox([widgets.HBox([inner]), widgets.HTML()])
    found = list(iter_widgets(root))
    assert inner in found and inner.layout in found and inner.style in found
    assert len({w.model_id for w in found}) == len(found)
    for w in found:
        w.close()
