"""The front door: `hubkit.__all__` lists exactly the public names, sorted."""

from __future__ import annotations

import importlib
import pickle
import types

import pytest

import hubkit


def test_all_is_sorted_and_unique() -> None:
    assert hubkit.__all__ == sorted(set(hubkit.__all__))


def test_all_names_exist() -> None:
    missing = [name for name in hubkit.__all__ if not hasattr(hubkit, name)]
    assert missing == []


def test_all_matches_public_names() -> None:
    public = {
        name
        for name, value in vars(hubkit).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(hubkit.__all__)


def test_conformance_surface_is_exported() -> None:
    for name in ("default_model_display", "mask_secret", "margin_rate", "call_credits"):
        assert callable(getattr(hubkit, name))


def test_no_exported_name_shadows_a_submodule() -> None:
    # `from hubkit.replay import replay` at the front door would make `import hubkit.replay
    # as m` hand back the function, not the module.
    import pkgutil

    submodules = {m.name for m in pkgutil.iter_modules(hubkit.__path__)}
    assert submodules & set(hubkit.__all__) == set()


PACKAGES = ("catalog", "pricing", "replay", "scenarios", "usage")


@pytest.mark.parametrize("package", PACKAGES)
def test_package_exports_exist_and_shadow_no_submodule(package: str) -> None:
    # Each stage package re-exports what its old flat module offered; an exported name equal
    # to a submodule's (the function `drift` over a `drift.py`) would make
    # `import hubkit.catalog.drift as m` hand back the function.
    import pkgutil

    module = importlib.import_module(f"hubkit.{package}")
    assert module.__all__ == sorted(set(module.__all__), key=module.__all__.index)
    assert [n for n in module.__all__ if not hasattr(module, n)] == []
    submodules = {m.name for m in pkgutil.iter_modules(module.__path__)}
    assert submodules & set(module.__all__) == set()


def test_exported_classes_show_the_public_path() -> None:
    assert repr(hubkit.Store) == "<class 'hubkit.Store'>"
    assert repr(hubkit.ValidationError) == "<class 'hubkit.ValidationError'>"
    classes = [getattr(hubkit, n) for n in hubkit.__all__ if isinstance(getattr(hubkit, n), type)]
    assert len(classes) > 40
    assert {c.__module__ for c in classes} == {"hubkit"}
    # every class under its own name, but the old names kept as aliases of renamed ones
    aliases = {"Settings": "EnvironmentSettings"}
    assert [c.__qualname__ for c in classes] == [
        aliases.get(n, n) for n in hubkit.__all__ if isinstance(getattr(hubkit, n), type)
    ]
    assert all(getattr(hubkit, old) is getattr(hubkit, new) for old, new in aliases.items())


def test_exported_values_pickle_by_their_public_path() -> None:
    from decimal import Decimal

    values = [
        hubkit.RateType.VIDEO,
        hubkit.UnitCosts(input=Decimal("0.000001"), output=Decimal("0.000002")),
        hubkit.RateFilter(providers=("openai",)),
        hubkit.Behaviour(),
        hubkit.BillingSettings(),
        hubkit.ValidationError("bad", field="x"),
    ]
    for value in values:
        data = pickle.dumps(value)
        # Found under hubkit.<name>, not under the module that defines it today.
        assert b"hubkit" in data and b"hubkit." not in data
        back = pickle.loads(data)
        assert type(back) is type(value)
        if isinstance(value, BaseException):
            assert back.args == value.args and back.field == value.field  # type: ignore[attr-defined]
        else:
            assert back == value
