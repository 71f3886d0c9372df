"""The guest configuration model: sizes, TOML files, errors that name the file and the key."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from host import config
from host.config import (
    ALLOWED_KEYS,
    DEFAULT_MAX_OUTPUT_BYTES,
    DEFAULT_MEMORY_BYTES,
    ConfigError,
    GuestConfig,
    config_from_keywords,
    load_config,
    parse_size,
    validate_config,
)
from host.configkeys import KEYS, ConfigKey, check_fields, toml_keys
from tests.framework.paths import REPO_ROOT


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("5MiB", 5 * 1024 * 1024),
        ("64MiB", 64 * 1024 * 1024),
        ("64KiB", 65536),
        ("512k", 512 * 1024),
        ("1G", 1024**3),
        ("2GB", 2_000_000_000),
        ("10kb", 10_000),
        ("1.5MiB", 1_572_864),
        (" 7 B ", 7),
        ("4096", 4096),
        (4096, 4096),
        (0, 0),
    ],
)
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "-1", -1, "5 MiBs", "0x10", "", True, 1.5, "1e3"])
def test_bad_sizes_name_the_text(text: object) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_defaults() -> None:
    config = GuestConfig()
    assert config.memory == DEFAULT_MEMORY_BYTES == 5 * 1024 * 1024
    assert config.timeout is None and config.cpu is None
    assert config.max_output == DEFAULT_MAX_OUTPUT_BYTES
    assert config.args == [] and config.env == {}


def test_env_entries_are_key_equals_value_bytes() -> None:
    config = GuestConfig(env={"A": "1", "EMPTY": "", "EQ": "a=b"})
    assert config.env_entries() == [b"A=1", b"EMPTY=", b"EQ=a=b"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "guest.toml"
    path.write_text(text)
    return path


def test_the_example_config_is_valid() -> None:
    config = load_config(REPO_ROOT / "configs" / "hello.toml")
    assert config.memory == 5 * 1024 * 1024
    assert config.env == {"GREETING": "hello"}


def test_a_file_with_every_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'memory = "64MiB"\ntimeout = 2.5\ncpu = 3\nmax_output = "1MiB"\n'
        'args = ["-x", "two words"]\n[env]\nA = "b"\n',
    )
    config = load_config(path)
    assert config == GuestConfig(
        memory=64 * 1024 * 1024,
        timeout=2.5,
        cpu=3,
        max_output=1024 * 1024,
        args=["-x", "two words"],
        env={"A": "b"},
    )


def test_unknown_key_names_the_file_the_key_and_the_allowed_keys(tmp_path: Path) -> None:
    path = write(tmp_path, 'memroy = "5MiB"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert str(path) in text
    assert "'memroy'" in text
    for key in ALLOWED_KEYS:
        assert key in text
    assert caught.value.key == "memroy"


@pytest.mark.parametrize(
    ("toml", "key", "words"),
    [
        ('memory = "lots"', "memory", "invalid size"),
        ("memory = -5", "memory", "negative"),
        ('memory = "5GiB"', "memory", "less than or equal"),
        ("timeout = 0", "timeout", "greater than 0"),
        ('timeout = "soon"', "timeout", "number"),
        ("cpu = 0", "cpu", "greater than or equal"),
        ("args = [1]", "args", "string"),
        ('args = ["a\\u0000b"]', "args", "NUL"),
        ("env = { A = 3 }", "env", "string"),
        ('env = { "A=B" = "c" }', "env", "'='"),
        ('env = { "" = "c" }', "env", "non-empty"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, toml: str, key: str, words: str) -> None:
    path = write(tmp_path, toml + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: {key}"), text
    assert words.lower() in text.lower(), text


def test_not_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "memory = \n")
    with pytest.raises(ConfigError, match="not valid TOML") as caught:
        load_config(path)
    assert str(path) in str(caught.value)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read") as caught:
        load_config(tmp_path / "nope.toml")
    assert "nope.toml" in str(caught.value)


def test_command_line_spelling_of_keys() -> None:
    names = {"max_output": "--max-output"}
    with pytest.raises(ConfigError) as caught:
        validate_config({"max_output": "much"}, "command line", lambda k: names.get(k, k))
    assert str(caught.value).startswith("command line: --max-output: invalid size")


def test_several_problems_are_counted() -> None:
    with pytest.raises(ConfigError, match="and 1 more problem"):
        validate_config({"memory": "x", "cpu": -1}, "here")


def test_the_config_is_frozen() -> None:
    config = GuestConfig()
    with pytest.raises(ValueError):
        config.memory = 1


# -- one model, every door: the keys of host.configkeys ------------------------------------


def test_every_field_has_its_key_and_the_key_is_its_description() -> None:
    assert [key.name for key in KEYS] == list(GuestConfig.model_fields)
    for key in KEYS:
        assert GuestConfig.model_fields[key.name].description == key.help


def test_a_field_without_its_key_is_refused() -> None:
    class Wider(GuestConfig):
        stack: int = 0

    with pytest.raises(TypeError, match="no ConfigKey for \\['stack'\\]"):
        check_fields(Wider.model_fields)


def test_the_documented_toml_keys_are_the_fields_and_their_examples_are_valid() -> None:
    document = toml_keys()
    values = tomllib.loads(document)
    assert list(values) == list(GuestConfig.model_fields)
    validate_config(values, "the documented example")
    assert "\n".join("    " + line if line else "" for line in document.splitlines()) in (
        config.__doc__ or ""
    )


@pytest.mark.parametrize("key", KEYS, ids=lambda key: key.name)
def test_the_documented_default_is_the_default(key: ConfigKey) -> None:
    default = GuestConfig.model_fields[key.name].get_default(call_default_factory=True)
    if key.default is None:
        assert default in ([], {})
    elif key.default == "none":
        assert default is None
    else:
        given = validate_config({key.name: key.parse(key.default)}, "the help")
        assert getattr(given, key.name) == default


def test_keywords_none_is_the_default_and_an_unknown_name_a_type_error() -> None:
    assert config_from_keywords({"memory": None, "env": None}, "f") == GuestConfig()
    assert config_from_keywords({"args": ("a",)}, "f").args == ["a"]
    with pytest.raises(TypeError, match=r"f\(\) got an unexpected keyword argument 'fule'"):
        config_from_keywords({"fule": 3}, "f")
    with pytest.raises(ConfigError, match=r"^f: fuel"):
        config_from_keywords({"fuel": -3}, "f")


def test_the_readme_names_every_key() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    options = re.findall(r"^\| `(--[a-z-]+) ([A-Z=:\[\]]+)` \|", readme, re.MULTILINE)
    keyed = [(key.flag, key.metavar) for key in KEYS if key.option]
    assert [option for option in options if option[0] in {flag for flag, _ in keyed}] == keyed
    listed = re.search(r"the limits of `kindling run`\s+\(([^)]*)\)", readme)
    assert listed is not None
    assert re.findall(r"`(\w+)`", listed.group(1)) == [key.name for key in KEYS]
