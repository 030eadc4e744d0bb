"""Profile variables as the appliance describes them: input types, options, sections, immutable and hidden values."""

from __future__ import annotations

from typing import Any

from wizard.appliance.localui_answers import parse_archive
from wizard.appliance.variables import DROPDOWN, MULTILINE, TEXT, check_answers


def archive(*profiles: tuple[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        "archiveUploadPath": "/a.tgz",
        "clusterProfileDetails": [
            {"profileUid": f"uid-{i}", "profileName": name, "variables": variables}
            for i, (name, variables) in enumerate(profiles)
        ],
    }


def test_the_newer_fields_are_read() -> None:
    details = parse_archive(
        archive(
            (
                "mgmt",
                [
                    {"name": "replicas", "displayName": "Mongo Replicas", "inputType": "dropdown",
                     "options": [{"label": "One", "value": "1"}, {"label": "Three", "value": "3", "default": True}],
                     "section": "Registry Options"},
                    {"name": "rules", "inputType": "MULTILINE", "group": "Registry Options"},
                    {"name": "root", "defaultValue": "{{vip}}", "immutable": True},
                    {"name": "port", "defaultValue": "30003", "hidden": True, "category": {"name": "Advanced"}},
                    {"name": "odd", "inputType": "slider"},
                    {"name": "empty", "inputType": "dropdown", "options": []},
                    "not a variable",
                ],
            )
        )
    )  # fmt: skip
    by = {v.name: v for v in details.variables}
    assert set(by) == {"replicas", "rules", "root", "port", "odd", "empty"}
    replicas = by["replicas"]
    assert replicas.input_type == DROPDOWN and [o.text for o in replicas.options] == ["One", "Three"]
    assert replicas.default == "3" and replicas.section == "Registry Options"  # the option marked default
    assert by["rules"].input_type == MULTILINE and by["rules"].section == "Registry Options"
    assert by["root"].immutable and by["root"].default == "{{vip}}" and by["root"].section == ""
    assert by["port"].hidden and by["port"].section == "Advanced"
    assert by["odd"].input_type == TEXT and by["empty"].input_type == TEXT  # nothing to choose from: a text field


def test_several_profiles_are_sections_of_their_own() -> None:
    details = parse_archive(archive(("Cluster Profile Options", [{"name": "a"}]), ("Registry", [{"name": "b"}])))
    assert [(v.name, v.section, v.profile_uid) for v in details.variables] == [
        ("a", "Cluster Profile Options", "uid-0"),
        ("b", "Registry", "uid-1"),
    ]
    assert parse_archive(archive(("only", [{"name": "a"}]))).variables[0].section == ""


def test_answers_the_description_rules_out() -> None:
    variables = list(
        parse_archive(
            archive(
                (
                    "p",
                    [
                        {"name": "n", "displayName": "N", "inputType": "dropdown", "options": ["1", "3"]},
                        {"name": "r", "defaultValue": "x", "immutable": True},
                        {"name": "m", "inputType": "multiline"},
                        {"name": "t"},
                    ],
                )
            )
        ).variables
    )
    assert check_answers(variables, {"n": "3", "r": "x", "m": "a\nb", "t": "one"}) == []
    problems = {p.name: p.message for p in check_answers(variables, {"n": "2", "r": "y", "t": "a\nb"})}
    assert problems == {
        "n": "'2' is not one of its options ('1', '3')",
        "r": "is fixed by the profile to 'x'; remove the answer",
        "t": "takes a single line",
    }


def test_every_lab_profile_variable_has_a_name_in_every_variant_scheme() -> None:
    """A variable added to the lab's profile needs its other spellings too, or that variant's archive is a 500."""
    from wizard.lab import cluster

    assert {v.name for v in cluster.VARIABLES} <= set(cluster._DOTTED)
