"""``run_function``: a typed, documented function as a command (jsonargparse)."""

from __future__ import annotations

import pytest

from tweetcls.core.arguments import repeated_flags, run_function


def command(member: list[str], names: list[str] | None = None, seed: int = 0) -> tuple:
    """Collect the arguments.

    Args:
        member: Repeatable.
        names: Optional list.
        seed: A number.
    """
    return member, names, seed


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--member", "a", "--member", "b", "--seed", "3"], (["a", "b"], None, 3)),
        (["--member=a", "--member", "b"], (["a", "b"], None, 0)),
        (["--member", "[a, b]", "--names", "x"], (["a", "b"], ["x"], 0)),
        (["--member+", "a", "--member+", "b"], (["a", "b"], None, 0)),
    ],
    ids=["repeated", "equals", "json-list", "jsonargparse-append"],
)
def test_a_list_flag_may_be_repeated(args, expected):
    assert run_function(command, args, "test") == expected


def test_repeated_flags_leave_other_flags_and_forwarded_arguments():
    args = ["--seed", "1", "--member", "a", "--", "--member", "b"]
    assert repeated_flags(args, {"member"}) == [
        "--seed",
        "1",
        "--member+",
        "a",
        "--",
        "--member",
        "b",
    ]


def test_a_missing_list_is_one_parser_error(capsys):
    with pytest.raises(SystemExit) as exc:
        run_function(command, ["--seed", "1"], "test")
    assert exc.value.code == 2
    assert "member" in capsys.readouterr().err
