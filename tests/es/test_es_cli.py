"""`rlcanon es NAME`: one subcommand per ask/tell strategy and per ES method, each built from the
registry, so a new strategy or method needs no CLI edit."""

import dataclasses
import json
import re

import pytest

from rlcanon.cli import main
from rlcanon.cli.es import methods
from rlcanon.es import STRATEGIES
from rlcanon.registry import ENTRIES, make_config

METHODS = sorted(methods())


def test_every_strategy_and_method_has_a_subcommand(capsys):
    with pytest.raises(SystemExit):
        main(["es", "--help"])
    text = capsys.readouterr().out
    assert METHODS and set(METHODS) <= {k for k, e in ENTRIES.items() if e.family == "es"}
    for name in [*STRATEGIES, *METHODS]:
        assert re.search(rf"^    {re.escape(name)}(\s|$)", text, re.MULTILINE), name


@pytest.mark.parametrize("name", METHODS)
def test_every_method_shows_its_config_from_flags(name, capsys):
    entry = ENTRIES[name]
    assert main(["es", name, "--env-id", entry.smoke_env, "--seed", "7", "--show-config"]) == 0
    shown = json.loads(capsys.readouterr().out)
    fields = {f.name for f in dataclasses.fields(entry.config)}
    assert set(shown) == fields and shown["seed"] == 7 and shown["env_id"] == entry.smoke_env


def test_a_config_field_named_like_a_make_config_argument_is_an_override(capsys):
    # PBT's config has a field 'algo', which once collided with make_config's own first argument
    config = make_config("pbt", "CartPole-v1", algo="a2c")
    assert config.algo == "a2c" and config.env_id == "CartPole-v1"
    assert main(["es", "pbt", "--algo", "a2c", "--show-config"]) == 0
    assert json.loads(capsys.readouterr().out)["algo"] == "a2c"


def test_an_unknown_name_is_refused_in_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["es", "nope"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "invalid choice: 'nope'" in err and len(err.strip().splitlines()) == 1
