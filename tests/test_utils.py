"""``lerobot_cknna.utils``: patch-and-restore, atomic writes."""

import json
import types

import pytest

from lerobot_cknna.utils.io import write_json_atomic
from lerobot_cknna.utils.patching import patched


class Owner:
    def method(self):
        return "class"


def test_patched_restores_an_own_attribute_and_deletes_an_inherited_one():
    owner, module = Owner(), types.SimpleNamespace(value=1)
    with patched(owner, "method", lambda: "instance"), patched(module, "value", 2):
        assert owner.method() == "instance" and module.value == 2
    assert owner.method() == "class" and "method" not in vars(owner) and module.value == 1


def test_patched_restores_on_error_too():
    module = types.SimpleNamespace(value=1)
    with pytest.raises(RuntimeError), patched(module, "value", 2):
        raise RuntimeError("boom")
    assert module.value == 1


def test_json_is_written_whole_or_not_at_all(tmp_path):
    path = tmp_path / "record.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(ValueError):
        write_json_atomic(path, {"a": float("nan")})  # not JSON: refused, the old file stays
    assert json.loads(path.read_text()) == {"a": 1} and [p.name for p in tmp_path.iterdir()] == [
        "record.json"
    ]
