"""Bad input gets a precise error (position and reason), never an exception or a hang."""

from __future__ import annotations

import time

import pytest

from cephalo_common.variables import (
    ErrorCode,
    Limits,
    TemplateError,
    TemplateSyntaxError,
    evaluate,
    evaluate_truthy,
    evaluate_value,
    parse,
    render,
    validate,
    validate_variable_name,
)

ONE_MEGABYTE = "x" * 1_048_576 + "#{a}"


def _only(errors: list[TemplateError]) -> TemplateError:
    assert len(errors) == 1, errors
    return errors[0]


def test_an_unterminated_if_is_reported_where_it_opens() -> None:
    error = _only(validate("line one\n  #{if Ready}go"))
    assert error.code is ErrorCode.UNTERMINATED_BLOCK
    assert (error.position, error.line, error.column) == (11, 2, 3)
    assert error.message == "#{if} is never closed: expected #{/if}"


def test_an_unterminated_if_still_evaluates_as_octostache_does() -> None:
    assert evaluate("#{if Ready}go", {"Ready": "true"}) == "#{if Ready}go"


@pytest.mark.parametrize(
    ("template", "code", "column", "message"),
    [
        (
            "#{each a in Items}#{a}",
            ErrorCode.UNTERMINATED_BLOCK,
            1,
            "#{each} is never closed: expected #{/each}",
        ),
        (
            "#{unless X}y",
            ErrorCode.UNTERMINATED_BLOCK,
            1,
            "#{unless} is never closed: expected #{/unless}",
        ),
        ("ab #{Foo", ErrorCode.UNTERMINATED_BLOCK, 4, "unterminated '#{': expected '}'"),
        ("#{Fo[o}", ErrorCode.UNTERMINATED_BLOCK, 5, "unterminated '[': expected ']'"),
        ("#{if a}#{Y", ErrorCode.UNTERMINATED_BLOCK, 8, "unterminated '#{': expected '}'"),
        ("done#{/if}", ErrorCode.UNMATCHED_CLOSE, 5, "#{/if} has no matching opening tag"),
        (
            "#{if a}x#{/each}",
            ErrorCode.UNTERMINATED_BLOCK,
            9,
            "found #{/each} but #{if} opened at 1:1 is closed by #{/if}",
        ),
        (
            "#{else}",
            ErrorCode.SYNTAX,
            1,
            "#{else} outside an #{if} block (it would be read as a variable name)",
        ),
    ],
)
def test_block_errors(template: str, code: ErrorCode, column: int, message: str) -> None:
    error = _only(validate(template))
    assert (error.code, error.column, error.message) == (code, column, message)


def test_an_unknown_filter_is_reported_at_its_name() -> None:
    template = "#{A | ToUpper} #{B | Tolower | ToBazooka 6} #{if C | Nope}x#{/if}"
    errors = validate(template)
    assert [(e.code, e.position, e.message) for e in errors] == [
        (ErrorCode.UNKNOWN_FILTER, template.index("ToBazooka"), "unknown filter 'ToBazooka'"),
        (ErrorCode.UNKNOWN_FILTER, template.index("Nope"), "unknown filter 'Nope'"),
    ]


def test_unknown_filters_are_found_inside_options_and_bodies() -> None:
    errors = validate("#{each x in L}#{x | Append #{y | Frob}}#{/each}")
    assert [e.message for e in errors] == ["unknown filter 'Frob'"]


def test_a_cycle_is_reported_with_its_chain_and_the_token_that_reached_it() -> None:
    evaluation = render("Hello\n#{A}", {"A": "#{B}", "B": "#{A}"})
    (error,) = evaluation.errors
    assert error.code is ErrorCode.CYCLE
    assert (error.line, error.column) == (2, 1)
    assert "self referencing loop (A -> B -> A" in error.message
    assert evaluation.text is None


def test_a_one_megabyte_template_is_over_the_size_bound() -> None:
    error = _only(validate(ONE_MEGABYTE))
    assert error.code is ErrorCode.TEMPLATE_TOO_LARGE
    assert error.position == Limits().max_template_chars
    assert "1048580 characters long; the limit is 262144" in error.message
    evaluation = render(ONE_MEGABYTE, {"a": "b"})
    assert evaluation.text is None and evaluation.errors[0].code is ErrorCode.TEMPLATE_TOO_LARGE


def test_an_illegal_character_in_a_template_name_is_reported() -> None:
    error = _only(validate("ok\n#{Web$Site.Url}"))
    assert (error.code, error.line, error.column) == (ErrorCode.ILLEGAL_CHARACTER, 2, 6)
    assert error.message.startswith("illegal character '$' in a variable name")


@pytest.mark.parametrize(
    ("name", "code", "position"),
    [
        ("Web$Site", ErrorCode.ILLEGAL_CHARACTER, 3),
        ("Db;Password", ErrorCode.ILLEGAL_CHARACTER, 2),
        ("", ErrorCode.EMPTY_NAME, 0),
        ("   ", ErrorCode.EMPTY_NAME, 0),
        ("Foo..Bar", ErrorCode.SYNTAX, 4),
        ("Foo.", ErrorCode.SYNTAX, 4),
        ("A[x", ErrorCode.UNTERMINATED_BLOCK, 1),
        ("A]", ErrorCode.SYNTAX, 1),
        ("A[x]b", ErrorCode.SYNTAX, 4),
        ("A[#{x}]", ErrorCode.ILLEGAL_CHARACTER, 2),
    ],
)
def test_illegal_variable_names(name: str, code: ErrorCode, position: int) -> None:
    error = _only(validate_variable_name(name))
    assert (error.code, error.position) == (code, position)


@pytest.mark.parametrize(
    "name",
    [
        "Foo",
        "Foo Bar-Baz_1",
        "Octopus.Action[Deploy web].Output.Url",
        "Octopus.Action[Step (1)].Output[Web 01].Url",
        "Package[containers[0].container].Registry",
        "A[]",
        "Logging:LogLevel:Default",
    ],
)
def test_legal_variable_names(name: str) -> None:
    assert validate_variable_name(name) == []


def test_parse_raises_with_the_same_errors_validate_returns() -> None:
    with pytest.raises(TemplateSyntaxError) as raised:
        parse("#{Foo")
    assert raised.value.errors == validate("#{Foo")
    assert str(parse("a #{B | ToUpper}")) == "a #{B | ToUpper}"


BAD_INPUTS = [
    "#{if X}" * 5000,
    "#{" * 5000,
    "[" * 5000,
    "#{a" + "[" * 5000 + "}",
    "#{calc " + "(" * 5000 + "1" + ")" * 5000 + "}",
    "#{each a in L}" * 3000,
    "###{" * 20000,
    "#{a | " + "Append #{b | " * 2000,
    '#{v | Match "(x+x+)+y"}',
    ONE_MEGABYTE,
    "#{if a == }x#{/if}",
    '#{if "unterminated}',
    "\x00#{\x00}\ud800",
]


@pytest.mark.parametrize("template", BAD_INPUTS, ids=range(len(BAD_INPUTS)))
def test_bad_templates_never_raise_or_hang(template: str) -> None:
    variables = {"X": "true", "L": "a,b", "v": "x" * 40, "a": "#{a}"}
    started = time.monotonic()
    validate(template)
    render(template, variables)
    evaluate(template, variables)
    evaluate_truthy(template, variables)
    evaluate_value("a", variables)
    assert time.monotonic() - started < 5


def test_blocks_nested_past_the_limit_are_refused() -> None:
    template = "#{if a}" * 41 + "x" + "#{/if}" * 41
    evaluation = render(template, {"a": "1"})
    assert evaluation.text is None
    assert evaluation.errors[0].code is ErrorCode.NESTING_TOO_DEEP
    assert _only(validate(template)).code is ErrorCode.NESTING_TOO_DEEP
    assert evaluate("#{if a}" * 30 + "x" + "#{/if}" * 30, {"a": "1"}) == "x"


def test_variables_nested_past_the_limit_are_refused() -> None:
    chain = {f"v{i}": f"#{{v{i + 1}}}" for i in range(60)} | {"v60": "end"}
    assert render("#{v0}", chain).errors[0].code is ErrorCode.NESTING_TOO_DEEP
    assert evaluate("#{v30}", chain) == "end"


def test_exponential_output_is_stopped_by_the_output_bound() -> None:
    doubling = {f"v{i}": f"#{{v{i + 1}}}#{{v{i + 1}}}" for i in range(40)} | {"v40": "x"}
    evaluation = render("#{v0}", doubling)
    assert evaluation.text is None
    assert evaluation.errors[0].code is ErrorCode.OUTPUT_TOO_LARGE
    small = Limits(max_output_chars=10)
    assert (
        render("#{v}", {"v": "x" * 11}, limits=small).errors[0].code is ErrorCode.OUTPUT_TOO_LARGE
    )


def test_the_step_budget_stops_runaway_iteration() -> None:
    items = ",".join(str(i) for i in range(100))
    template = "#{each a in L}#{each b in L}#{each c in L}#{a}#{/each}#{/each}#{/each}"
    evaluation = render(template, {"L": items}, limits=Limits(max_steps=10_000))
    assert evaluation.text is None
    assert evaluation.errors[0].code is ErrorCode.STEP_BUDGET_EXHAUSTED
    assert evaluation.errors[0].message == "evaluation took more than 10000 steps"


def test_an_oversize_value_that_is_a_template_is_refused() -> None:
    evaluation = render("#{big}", {"big": "#{x}" + "y" * 300_000})
    assert evaluation.errors[0].code is ErrorCode.TEMPLATE_TOO_LARGE
    assert evaluate("#{big}", {"big": "y" * 300_000}) == "y" * 300_000
