"""Providers & credentials: list, add and edit providers; add, rotate, enable, delete keys.

:class:`ProvidersState` holds the state and the actions (no widgets); :class:`ProvidersApp`
is the thin ipywidgets view. A plaintext key passes through an action straight to the
store (which encrypts it) and is never kept: not on the state, not in a message, and the
view clears its password field after every submit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets
import pandas as pd

from hubkit.config import EnvironmentSettings, get_settings
from hubkit.domain import CredentialType, ProviderSpec, masked_url
from hubkit.errors import NotFoundError, ValidationError
from hubkit.frames import credentials_frame, providers_frame
from hubkit.hub.client import HubClient
from hubkit.store import CredentialInfo, Provider, Store
from hubkit.widgets._common import (
    AppState,
    Message,
    frame_html,
    heading,
    message_area,
    options_for,
    show_message,
    text_input,
)

#: Builds a hub client (``HubClient`` or anything with its ``list_providers`` and
#: ``test_credential``), used as a context manager.
HubFactory = Callable[[], Any]

PROVIDER_COLUMNS = {
    "name": "name",
    "display_name": "display name",
    "enabled": "enabled",
    "base_url": "base URL",
    "region": "region",
    "credentials": "credentials",
    "rates": "rates",
    "custom": "custom",
}
CREDENTIAL_COLUMNS = {
    "provider": "provider",
    "name": "name",
    "credential_type": "type",
    "display_text": "key (masked)",
    "active": "active",
    "weight": "weight",
    "usage_count": "uses",
    "rotated_at": "rotated",
    "error": "error",
}


def default_hub_factory(settings: EnvironmentSettings | None = None) -> HubFactory | None:
    """A factory for ``HubClient.from_settings`` when HUBKIT_HUB_URL is set, else None (the
    app then simply has no "test against hub" button)."""
    settings = settings or get_settings()
    if not settings.hub_url:
        return None
    return lambda: HubClient.from_settings(settings)


class ProvidersState(AppState):
    """Providers and their credentials, as the operator manages them."""

    def __init__(
        self,
        store: Store,
        *,
        hub_factory: HubFactory | None = None,
        use_configured_hub: bool = True,
    ) -> None:
        super().__init__()
        self.store = store
        self._hub_factory = hub_factory
        if hub_factory is None and use_configured_hub:
            self._hub_factory = default_hub_factory(store.settings)
        self.providers: list[Provider] = []
        self.credentials: list[CredentialInfo] = []
        self.selected: str | None = None
        self.refresh()

    # ---- reading -------------------------------------------------------------------------
    @property
    def hub_available(self) -> bool:
        return self._hub_factory is not None

    def refresh(self) -> None:
        self.providers = self.store.list_providers()
        self.credentials = self.store.list_credentials()
        if self.selected and self.selected not in self.provider_names:
            self.selected = None

    @property
    def provider_names(self) -> list[str]:
        return [p.name for p in self.providers]

    @property
    def selected_provider(self) -> Provider | None:
        return next((p for p in self.providers if p.name == self.selected), None)

    def select(self, name: str | None) -> None:
        self.selected = name or None

    def providers_table(self) -> pd.DataFrame:
        return providers_frame(self.providers)

    def selected_credentials(self) -> list[CredentialInfo]:
        return [c for c in self.credentials if self.selected in (None, c.provider)]

    def credentials_table(self) -> pd.DataFrame:
        """Masked only: the frame has ``display_text``, never a value."""
        return credentials_frame(self.selected_credentials())

    def credential(self, provider: str, name: str) -> CredentialInfo | None:
        return next(
            (c for c in self.credentials if c.provider == provider and c.name == name), None
        )

    # ---- providers -----------------------------------------------------------------------
    def save_provider(
        self,
        name: str,
        *,
        display_name: str = "",
        base_url: str = "",
        region: str = "",
        enabled: bool = True,
        custom: bool = False,
    ) -> bool:
        """Add the provider, or update it when one of that name exists."""
        key = (name or "").strip().lower()
        fields: dict[str, Any] = {  # ProviderSpec.create checks them
            "display_name": display_name.strip() or None,
            "base_url": base_url.strip() or None,
            "region": region.strip() or None,
            "enabled": enabled,
        }
        if key in self.provider_names:
            display = fields["display_name"] or self._display_of(key)
            ok, _ = self._attempt(
                lambda: self.store.update_provider(key, **{**fields, "display_name": display})
            )
            verb = "updated"
        else:
            ok, _ = self._attempt(
                lambda: self.store.add_provider(ProviderSpec.create(key, custom=custom, **fields))
            )
            verb = "added"
        if ok:
            self.refresh()
            self.selected = key
            self._say(Message.success(f"provider {key!r} {verb}"))
        return ok

    def _display_of(self, name: str) -> str:
        return next((p.display_name for p in self.providers if p.name == name), name)

    def delete_provider(self, name: str) -> bool:
        ok, _ = self._attempt(lambda: self.store.delete_provider(name))
        if ok:
            self.refresh()
            self._say(Message.success(f"provider {name!r} and its credentials deleted"))
        return ok

    # ---- credentials ---------------------------------------------------------------------
    def add_credential(
        self,
        provider: str,
        name: str,
        secret: str,
        *,
        credential_type: str = CredentialType.API_KEY.value,
        access_key_id: str = "",
        weight: int = 100,
    ) -> bool:
        """Store a new credential, encrypted; only its masked text is kept for display."""
        ok, info = self._attempt(
            lambda: self.store.add_credential(
                provider,
                name,
                _value(credential_type, secret, access_key_id),
                credential_type=credential_type,
                weight=weight,
            ),
            redact=(secret,),
        )
        if ok and info is not None:
            self.refresh()
            self._say(Message.success(f"credential {info.name!r} added: {info.display_text}"))
        return ok

    def rotate_credential(
        self, provider: str, name: str, secret: str, *, access_key_id: str = ""
    ) -> bool:
        """Replace a credential's secret with a new one (e.g. after a key leak)."""
        current = self.credential(provider, name)
        if current is None:
            self._fail(NotFoundError(f"no credential {name!r} for provider {provider!r}"))
            return False
        ok, info = self._attempt(
            lambda: self.store.rotate_credential(
                provider,
                name,
                _value(current.credential_type, secret, access_key_id or _key_id(current)),
            ),
            redact=(secret,),
        )
        if ok and info is not None:
            self.refresh()
            self._say(Message.success(f"credential {name!r} rotated: now {info.display_text}"))
        return ok

    def set_credential_active(self, provider: str, name: str, active: bool) -> bool:
        ok, _ = self._attempt(lambda: self.store.update_credential(provider, name, active=active))
        if ok:
            self.refresh()
            self._say(Message.success(f"credential {name!r} {'enabled' if active else 'disabled'}"))
        return ok

    def delete_credential(self, provider: str, name: str, *, confirmed: bool = True) -> bool:
        if not confirmed:
            self._say(Message.warning(f"tick 'really delete' to delete credential {name!r}"))
            return False
        ok, _ = self._attempt(lambda: self.store.delete_credential(provider, name))
        if ok:
            self.refresh()
            self._say(Message.success(f"credential {name!r} of {provider!r} deleted"))
        return ok

    def test_credential(self, provider: str, name: str) -> bool:
        """Ask the configured hub whether the stored key works (nothing is saved there)."""
        if self._hub_factory is None:
            self._fail(
                ValidationError("no hub configured: set HUBKIT_HUB_URL and HUBKIT_HUB_TOKEN")
            )
            return False
        info = self.credential(provider, name)
        if info is None:
            self._fail(NotFoundError(f"no credential {name!r} for provider {provider!r}"))
            return False
        secrets: list[str] = []
        hub_factory = self._hub_factory  # not None (checked above), also inside check()

        def check() -> Any:
            value = self.store.reveal_credential(provider, name)
            secrets.extend(v for k, v in value.items() if k != "access_key_id")
            with hub_factory() as hub:
                found = [p for p in hub.list_providers(name=provider) if p.name == provider]
                if not found:
                    raise NotFoundError(
                        f"the hub has no provider {provider!r}; create it there first"
                    )
                payload: str | Mapping[str, str] = (
                    value["api_key"] if info.credential_type == "api_key" else value
                )
                return hub.test_credential(
                    found[0].id, payload, credential_type=info.credential_type
                )

        ok, result = self._attempt(check, redact=secrets)
        secrets.clear()
        if not ok or result is None:
            return False
        if result.ok:
            self._say(
                Message.success(f"the hub accepted credential {name!r} ({info.display_text})")
            )
            return True
        detail = str(result.detail or "invalid credentials")
        self._say(Message.error(f"the hub rejected credential {name!r}: {detail}"))
        return False


def _value(credential_type: str, secret: str, access_key_id: str) -> str | dict[str, str]:
    ctype = CredentialType.parse(credential_type)
    if ctype is CredentialType.ACCESS_KEY_PAIR:
        return {"access_key_id": access_key_id.strip(), "secret_access_key": secret}
    if ctype is CredentialType.CUSTOM:
        return {"secret": secret}
    return secret


def _key_id(info: CredentialInfo) -> str:
    """The public access key id shown before the masked secret (``id / ****``)."""
    if info.credential_type != CredentialType.ACCESS_KEY_PAIR.value:
        return ""
    return info.display_text.split(" / ", 1)[0]


# ==== the view =============================================================================


class ProvidersApp(widgets.VBox):
    """The providers & credentials panel. ``ProvidersApp(store)`` in a notebook cell."""

    def __init__(self, store: Store, *, state: ProvidersState | None = None) -> None:
        self.state = state or ProvidersState(store)
        self._rendering = False
        self._providers_html = widgets.HTML()
        self._pick = widgets.Dropdown(description="provider", layout=widgets.Layout(width="340px"))
        self._name = text_input("name", placeholder="e.g. openai")
        self._display = text_input("display name", placeholder="e.g. OpenAI")
        self._base_url = text_input("base URL", placeholder="https://api.openai.com/v1")
        self._region = text_input("region", placeholder="bedrock only, e.g. us-east-1")
        self._enabled = widgets.Checkbox(value=True, description="enabled")
        self._custom = widgets.Checkbox(value=False, description="custom (not a known provider)")
        self._save = widgets.Button(description="Save provider", button_style="primary")
        self._delete_provider = widgets.Button(description="Delete provider", button_style="danger")

        self._credentials_html = widgets.HTML()
        self._cred_name = text_input("credential name", placeholder="e.g. main")
        self._cred_type = widgets.Dropdown(
            options=[t.value for t in CredentialType],
            description="type",
            style={"description_width": "130px"},
        )
        self._access_key_id = text_input("access key id")
        self._secret = widgets.Password(
            description="secret", style={"description_width": "130px"}, placeholder="paste the key"
        )
        self._weight = widgets.BoundedIntText(
            value=100, min=0, max=10_000, description="weight", style={"description_width": "130px"}
        )
        self._add_cred = widgets.Button(
            description="Add credential",
            button_style="primary",
            tooltip="pick the provider above first",
        )
        self._cred_pick = widgets.Dropdown(
            description="credential", layout=widgets.Layout(width="340px")
        )
        self._rotate = widgets.Button(description="Rotate (new secret)")
        self._toggle = widgets.Button(description="Disable")
        self._confirm_delete = widgets.Checkbox(value=False, description="really delete")
        self._delete_cred = widgets.Button(description="Delete credential", button_style="danger")
        self._test = widgets.Button(description="Test against hub")
        self._message = message_area()

        for w in (self._pick, self._cred_pick, self._cred_type):
            w.observe(self._on_change, names="value")
        self._save.on_click(self._on_save)
        self._delete_provider.on_click(self._on_delete_provider)
        self._add_cred.on_click(self._on_add_credential)
        self._rotate.on_click(self._on_rotate)
        self._toggle.on_click(self._on_toggle)
        self._delete_cred.on_click(self._on_delete_credential)
        self._test.on_click(self._on_test)
        self._test.layout.display = "" if self.state.hub_available else "none"
        self.add_class("hubkit-providers")

        super().__init__(
            [
                heading("Providers"),
                self._providers_html,
                self._pick,
                widgets.HBox(
                    [
                        widgets.VBox([self._name, self._display, self._base_url, self._region]),
                        widgets.VBox(
                            [self._enabled, self._custom, self._save, self._delete_provider]
                        ),
                    ]
                ),
                heading("Credentials (masked)"),
                self._credentials_html,
                widgets.HBox(
                    [
                        widgets.VBox(
                            [
                                self._cred_name,
                                self._cred_type,
                                self._access_key_id,
                                self._secret,
                                self._weight,
                                self._add_cred,
                            ]
                        ),
                        widgets.VBox(
                            [
                                self._cred_pick,
                                widgets.HBox([self._rotate, self._toggle]),
                                widgets.HBox([self._confirm_delete, self._delete_cred]),
                                self._test,
                            ]
                        ),
                    ]
                ),  # fmt: skip
                self._message,
            ]
        )
        self._render()

    # ---- drawing -------------------------------------------------------------------------
    def _render(self) -> None:
        state = self.state
        self._providers_html.value = frame_html(
            state.providers_table(), columns=PROVIDER_COLUMNS, empty="no providers yet"
        )
        self._credentials_html.value = frame_html(
            state.credentials_table(), columns=CREDENTIAL_COLUMNS, empty="no credentials yet"
        )
        # Setting options fires value changes; the guard keeps them from re-entering.
        self._rendering = True
        try:
            picked = self._cred_pick.value
            self._pick.options = options_for(state.provider_names, blank="+ new provider")
            self._pick.value = state.selected or ""
            self._cred_pick.options = [
                (f"{c.provider}/{c.name} — {c.display_text}{'' if c.active else ' (off)'}",
                 f"{c.provider}\x00{c.name}")
                for c in state.selected_credentials()
            ]  # fmt: skip
            values = [v for _, v in self._cred_pick.options]
            self._cred_pick.value = picked if picked in values else (values[0] if values else None)
            self._fill_provider_form()
        finally:
            self._rendering = False
        self._sync_credential_controls()
        show_message(self._message, state.message)

    def _fill_provider_form(self) -> None:
        p = self.state.selected_provider
        self._name.value = p.name if p else ""
        self._name.disabled = p is not None
        self._display.value = p.display_name if p else ""
        # A URL stored with credentials before they were refused is shown masked; saving
        # it back as shown is refused, asking for the URL without them.
        self._base_url.value = (masked_url(p.base_url) or "") if p else ""
        self._region.value = (p.region or "") if p else ""
        self._enabled.value = p.enabled if p else True
        self._custom.value = p.custom if p else False
        self._custom.disabled = p is not None
        self._delete_provider.disabled = p is None

    def _sync_credential_controls(self) -> None:
        picked = self._picked_credential()
        info = self.state.credential(*picked) if picked else None
        for w in (self._rotate, self._toggle, self._delete_cred, self._test):
            w.disabled = info is None
        self._toggle.description = "Enable" if info is not None and not info.active else "Disable"
        self._access_key_id.layout.display = (
            "" if self._cred_type.value == CredentialType.ACCESS_KEY_PAIR.value else "none"
        )
        self._add_cred.disabled = self.state.selected is None

    def _picked_credential(self) -> tuple[str, str] | None:
        value = self._cred_pick.value
        if not value:
            return None
        provider, name = value.split("\x00", 1)
        return provider, name

    # ---- events (no business logic: read widgets, call the state, redraw) ------------------
    def _on_change(self, change: dict[str, Any]) -> None:
        if self._rendering:
            return
        if change["owner"] is self._pick:
            self.state.select(change["new"] or None)
            self._render()
        else:
            self._sync_credential_controls()

    def _on_save(self, _: widgets.Button) -> None:
        self.state.save_provider(
            self._name.value,
            display_name=self._display.value,
            base_url=self._base_url.value,
            region=self._region.value,
            enabled=self._enabled.value,
            custom=self._custom.value,
        )
        self._render()

    def _on_delete_provider(self, _: widgets.Button) -> None:
        if self.state.selected:
            self.state.delete_provider(self.state.selected)
        self._render()

    def _take_secret(self) -> str:
        """Read the password field and clear it at once, whatever happens next."""
        secret: str = self._secret.value
        self._secret.value = ""
        return secret

    def _on_add_credential(self, _: widgets.Button) -> None:
        secret = self._take_secret()
        if self.state.selected:
            ok = self.state.add_credential(
                self.state.selected,
                self._cred_name.value,
                secret,
                credential_type=self._cred_type.value,
                access_key_id=self._access_key_id.value,
                weight=self._weight.value,
            )
            if ok:
                self._cred_name.value = ""
        del secret
        self._render()

    def _on_rotate(self, _: widgets.Button) -> None:
        secret = self._take_secret()
        picked = self._picked_credential()
        if picked:
            self.state.rotate_credential(*picked, secret, access_key_id=self._access_key_id.value)
        del secret
        self._render()

    def _on_toggle(self, _: widgets.Button) -> None:
        picked = self._picked_credential()
        info = self.state.credential(*picked) if picked else None
        if info is not None:
            self.state.set_credential_active(info.provider, info.name, not info.active)
        self._render()

    def _on_delete_credential(self, _: widgets.Button) -> None:
        picked = self._picked_credential()
        if picked:
            self.state.delete_credential(*picked, confirmed=self._confirm_delete.value)
            self._confirm_delete.value = False
        self._render()

    def _on_test(self, _: widgets.Button) -> None:
        picked = self._picked_credential()
        if picked:
            self.state.test_credential(*picked)
        self._render()
