"""PLUGINS and PLUGINS_PATH: operator plug-ins named in settings, checked and loaded at start."""
from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from service.errors import SettingsError
from service.plugins import load_plugins
from service.settings import Settings, load_settings

SPIKE = {"stage": "tick", "factory": "streams.examples.spike_filter:spike_filter", "kwargs": {"max_jump_pct": 5}}
TIME_EXIT = {"stage": "signal", "factory": "streams.examples.time_exit:time_exit", "kwargs": {"after_s": 60},
             "name": "time_exit"}


def settings_with(tmp_path: Path, plugins: object, **env: str) -> Settings:
    raw = plugins if isinstance(plugins, str) else json.dumps(plugins)
    return load_settings({"PLUGINS": raw, **env}, env_file=str(tmp_path / "absent.env"))


def problems(tmp_path: Path, plugins: object, **env: str) -> list[tuple[str, str]]:
    with pytest.raises(SettingsError) as refused:
        settings_with(tmp_path, plugins, **env)
    return refused.value.problems


def load_problems(settings: Settings) -> list[tuple[str, str]]:
    with pytest.raises(SettingsError) as refused:
        load_plugins(settings)
    return refused.value.problems


@pytest.fixture
def user_modules(tmp_path: Path, monkeypatch):
    """A PLUGINS_PATH directory; sys.path and the modules imported from it are restored afterwards."""
    directory = tmp_path / "desk_plugins"
    directory.mkdir()
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield directory
    for name in set(sys.modules) - before:
        if name.startswith("tg_user_"):
            del sys.modules[name]


def test_no_plugins_by_default(tmp_path):
    settings = load_settings({}, env_file=str(tmp_path / "absent.env"))
    assert settings.plugins == "" and settings.plugins_path == ""
    assert load_plugins(settings) == []


def test_the_shipped_examples_load_in_order_with_their_names(tmp_path):
    loaded = load_plugins(settings_with(tmp_path, [SPIKE, TIME_EXIT]))
    assert [(p.position, p.name, p.stage, p.factory) for p in loaded] == [
        (1, SPIKE["factory"], "tick", SPIKE["factory"]),
        (2, "time_exit", "signal", TIME_EXIT["factory"]),
    ]
    assert loaded[1].kwargs == {"after_s": 60}
    assert all(callable(p.plugin.operator) and p.plugin.name == p.name for p in loaded)


@pytest.mark.parametrize(("plugins", "reason"), [
    ("[{", "not valid JSON"),
    ('{"stage": "tick"}', "expected a JSON list"),
    (["streams.examples.spike_filter:spike_filter"], "entry 1: expected an object"),
    ([{**SPIKE, "stage": "tik"}], 'entry 1 (streams.examples.spike_filter:spike_filter): stage: expected "tick", '
                                  '"signal" or "observer", got \'tik\''),
    ([{**SPIKE, "factory": "streams.examples.spike_filter"}],
     'entry 1 (streams.examples.spike_filter): factory: expected "package.module:factory"'),
    ([{**SPIKE, "factory": "streams examples:spike filter"}], 'factory: expected "package.module:factory"'),
    ([{"stage": "tick"}], "entry 1: factory: required"),
    ([{"factory": SPIKE["factory"]}], f"entry 1 ({SPIKE['factory']}): stage: required"),
    ([{**SPIKE, "kwargs": [5]}], "kwargs: expected an object of keyword arguments"),
    ([{**SPIKE, "kwarg": {}}], "unknown field 'kwarg' (known: factory, stage, kwargs, name)"),
    ([{**SPIKE, "name": ""}], "name: expected a non-empty string without commas"),
    ([{**SPIKE, "name": "spike,filter"}], "name: expected a non-empty string without commas"),
    ([SPIKE, {**SPIKE, "kwargs": {"max_jump_pct": 9}}],
     f"entry 2 ({SPIKE['factory']}): name: entry 1 is already called {SPIKE['factory']!r}; give one a \"name\""),
])
def test_a_malformed_entry_is_refused_naming_it(tmp_path, plugins, reason):
    found = problems(tmp_path, plugins)
    assert [name for name, _ in found] == ["PLUGINS"]
    assert reason in found[0][1], found


def test_every_malformed_entry_is_reported_with_the_other_settings(tmp_path):
    found = problems(tmp_path, [SPIKE, {**SPIKE, "stage": "x", "name": "a"}, {"factory": "nope", "stage": "tick"}],
                     PAPER_PORT="eighty")
    assert [name for name, _ in found] == ["PAPER_PORT", "PLUGINS", "PLUGINS"]
    assert found[1][1].startswith("entry 2 (streams.examples.spike_filter:spike_filter): stage")
    assert found[2][1].startswith("entry 3 (nope): factory")


def test_plugins_path_must_be_a_directory(tmp_path):
    found = problems(tmp_path, [], PLUGINS_PATH=str(tmp_path / "missing"))
    assert found == [("PLUGINS_PATH", f"not a directory: {tmp_path / 'missing'}")]


@pytest.mark.parametrize(("entry", "reason"), [
    ({"stage": "tick", "factory": "tg_no_such_module:make"},
     "cannot import tg_no_such_module: ModuleNotFoundError: No module named 'tg_no_such_module' "
     "(not installed; set PLUGINS_PATH to the directory that holds it)"),
    ({"stage": "tick", "factory": "streams.examples.spike_filter:nothing"},
     "streams.examples.spike_filter has no attribute nothing"),
    ({"stage": "tick", "factory": "streams.examples.spike_filter:__all__"}, "__all__ is not callable"),
    ({**SPIKE, "kwargs": {"max_jump_pct": -1}},
     "the factory raised ValueError: max_jump_pct must be > 0 and max_rejects >= 1"),
    ({**SPIKE, "kwargs": {"colour": "red"}}, "the factory raised TypeError: spike_filter() got an unexpected keyword argument 'colour'"),
    ({"stage": "tick", "factory": "builtins:dict"}, "the factory returned a dict, not an operator"),
    ({"stage": "tick", "factory": "builtins:str"}, "the factory returned a str, not an operator"),
])
def test_an_entry_that_cannot_be_loaded_is_refused_naming_it(tmp_path, entry, reason):
    settings = settings_with(tmp_path, [TIME_EXIT, entry])  # the shape is fine: found when loaded
    found = load_problems(settings)
    assert found == [("PLUGINS", f"entry 2 ({entry['factory']}): {reason}")]


def test_an_operator_that_returns_no_observable_is_refused(tmp_path, user_modules):
    (user_modules / "tg_user_wrong.py").write_text(textwrap.dedent("""
        def make():
            return lambda source: [1, 2, 3]
    """))
    settings = settings_with(tmp_path, [{"stage": "observer", "factory": "tg_user_wrong:make"}],
                             PLUGINS_PATH=str(user_modules))
    assert load_problems(settings) == [
        ("PLUGINS", "entry 1 (tg_user_wrong:make): the operator returned a list, not an Observable")]


def test_every_entry_that_cannot_be_loaded_is_reported_at_once(tmp_path):
    settings = settings_with(tmp_path, [{"stage": "tick", "factory": "tg_nothing_here:a"}, SPIKE,
                                        {**TIME_EXIT, "kwargs": {"after_s": 0}}])
    found = load_problems(settings)
    assert [reason.split(":")[0] for _, reason in found] == ["entry 1 (tg_nothing_here", "entry 3 (streams.examples.time_exit"]


def test_a_module_of_the_users_own_is_loaded_from_plugins_path(tmp_path, user_modules):
    (user_modules / "tg_user_exits.py").write_text(textwrap.dedent("""
        from reactivex import operators as ops

        def quiet(label="x"):
            return ops.filter(lambda item: False)
    """))
    settings = settings_with(tmp_path, [{"stage": "signal", "factory": "tg_user_exits:quiet", "kwargs": {"label": "y"},
                                         "name": "quiet"}], PLUGINS_PATH=str(user_modules))
    (loaded,) = load_plugins(settings)
    assert (loaded.name, loaded.stage, loaded.factory) == ("quiet", "signal", "tg_user_exits:quiet")
    assert sys.modules["tg_user_exits"].__file__ == str(user_modules / "tg_user_exits.py")


def test_a_user_module_that_fails_to_import_is_reported_with_its_error(tmp_path, user_modules):
    (user_modules / "tg_user_broken.py").write_text("import reactivex\nraise RuntimeError('no config file')\n")
    settings = settings_with(tmp_path, [{"stage": "tick", "factory": "tg_user_broken:make"}],
                             PLUGINS_PATH=str(user_modules))
    assert load_problems(settings) == [
        ("PLUGINS", "entry 1 (tg_user_broken:make): cannot import tg_user_broken: RuntimeError: no config file")]


def test_a_user_module_cannot_replace_an_installed_one(tmp_path, user_modules):
    (user_modules / "json.py").write_text("def make():\n    return lambda source: source\n")
    settings = settings_with(tmp_path, [{"stage": "tick", "factory": "json:make"}], PLUGINS_PATH=str(user_modules))
    assert load_problems(settings) == [("PLUGINS", "entry 1 (json:make): json has no attribute make")]


def test_a_module_missing_from_plugins_path_says_where_it_was_looked_for(tmp_path, user_modules):
    settings = settings_with(tmp_path, [{"stage": "tick", "factory": "tg_user_absent:make"}],
                             PLUGINS_PATH=str(user_modules))
    assert load_problems(settings) == [
        ("PLUGINS", "entry 1 (tg_user_absent:make): cannot import tg_user_absent: ModuleNotFoundError: No module "
                    f"named 'tg_user_absent' (not installed, nor in PLUGINS_PATH {user_modules})")]
