"""The JSON schema checks every file read back goes through: each kind refuses a wrong value with a
message naming the file and the field's path."""

import pytest

from rlcanon.core.validate import AnyJSON, AnyMap, Bool, Int, Map, Num, Str, check_json
from rlcanon.errors import CheckpointError

SCHEMA = Map(
    {
        "step": Int(0, 10),
        "lr": Num(0.0, 1.0),
        "kind": Str(("a", "b")),
        "flag": Bool(),
        "sizes": AnyMap(Int(1, 5)),
        "free": AnyJSON(),
    },
    optional=("free",),
)
GOOD = {"step": 3, "lr": 0.5, "kind": "a", "flag": True, "sizes": {"x": 1, "y": 5}}


def test_a_good_record_passes_with_or_without_its_optional_field():
    check_json("f.json", GOOD, SCHEMA)
    check_json("f.json", {**GOOD, "free": [1, {"any": None}]}, SCHEMA)


@pytest.mark.parametrize(
    "change,needle",
    [
        ({"step": 11}, "field step is 11, expected an integer in [0, 10]"),
        ({"step": True}, "field step is True, expected an integer"),
        ({"lr": float("nan")}, "field lr is nan, expected a finite number"),
        ({"kind": "c"}, "field kind is 'c', expected one of ['a', 'b']"),
        ({"flag": 1}, "field flag is 1, expected true or false"),
        ({"sizes": {"x": 0}}, "field sizes.x is 0, expected an integer in [1, 5]"),
        ({"sizes": [1]}, "field sizes is list, expected an object"),
        ({"extra": 1}, "field extra is not expected here"),
    ],
)
def test_each_kind_names_the_field_it_refuses(change, needle):
    with pytest.raises(CheckpointError) as info:
        check_json("f.json", {**GOOD, **change}, SCHEMA)
    assert str(info.value) == f"f.json: {needle}"


def test_a_missing_field_is_named():
    record = dict(GOOD)
    del record["flag"]
    with pytest.raises(CheckpointError, match=r"f\.json: field flag is missing"):
        check_json("f.json", record, SCHEMA)
