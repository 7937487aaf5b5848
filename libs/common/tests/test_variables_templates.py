"""Golden tests: Octostache's own fixtures (UsageFixture, ConditionalsFixture,
IterationFixture, JsonFixture, CalculationFixture), ported as (template, variables, expected).

Where Cephalo deliberately differs, the row says so and the README lists the difference.
"""

from __future__ import annotations

import pytest

from cephalo_common.variables import (
    ErrorCode,
    evaluate,
    evaluate_truthy,
    evaluate_value,
    render,
)

Row = tuple[str, dict[str, str], str | None]


def _rows(*rows: tuple[str, str, dict[str, str], str | None]) -> list[object]:
    return [
        pytest.param(template, variables, expected, id=name)
        for name, template, variables, expected in rows
    ]


BASICS = _rows(
    ("plain", "#{Foo}", {"Foo": "Bar"}, "Bar"),
    ("case-insensitive name", "#{Foo}", {"foo": "Bar"}, "Bar"),
    ("nested reference", "#{Foo}", {"Foo": "#{Bar}", "Bar": "Baz"}, "Baz"),
    ("nested filter ToBase64", "#{Foo}", {"Foo": "#{Bar | ToBase64}", "Bar": "Baz"}, "QmF6"),
    ("ToBase64 unicode", "#{Foo}", {"Foo": "#{Bar | ToBase64 unicode}", "Bar": "Baz"}, "QgBhAHoA"),
    ("FromBase64", "#{Foo}", {"Foo": "#{Bar | FromBase64}", "Bar": "QmF6"}, "Baz"),
    (
        "FromBase64 unicode",
        "#{Foo}",
        {"Foo": "#{Bar | FromBase64 unicode}", "Bar": "QgBhAHoA"},
        "Baz",
    ),
    ("nested ToLower", "#{Foo}", {"Foo": "#{Bar | ToLower}", "Bar": "Baz"}, "baz"),
    ("spaces in names", "#{Foo Bar Jazz}", {"Foo Bar Jazz": "Bar"}, "Bar"),
    ("filter without spaces", "#{Foo|ToUpper}", {"Foo": "#{Bar | ToLower}", "Bar": "Baz"}, "BAZ"),
    ("filter", "#{Foo | ToUpper}", {"Foo": "baz"}, "BAZ"),
    ("filters in order", "#{Foo|ToUpper|ToLower}", {"Foo": "Abc"}, "abc"),
    ("slash in name", "#{a/b}", {"a/b": "Foo"}, "Foo"),
    ("tilde in name", "#{a~b}", {"a~b": "Foo"}, "Foo"),
    ("parentheses in name", "#{(abc)}", {"(abc)": "Foo"}, "Foo"),
    ("text around", "Hello, #{Location}!", {"Location": "World"}, "Hello, World!"),
    ("no token", "plain text", {"a": "b"}, "plain text"),
    (
        "documented composite",
        "#{Url}/foo",
        {"Server": "Web01", "Port": "10933", "Url": "http://#{Server | ToLower}:#{Port}"},
        "http://web01:10933/foo",
    ),
)

ESCAPES = _rows(
    ("double hash escapes", "##{Foo}", {"foo": "Bar"}, "#{Foo}"),
    ("triple hash is hash then token", "###{foo}", {"foo": "Abc"}, "#Abc"),
    ("standalone hashes", "# ## ###", {}, "# ## ###"),
    ("even hash block", "###### hello", {}, "###### hello"),
    ("odd hash block", "####### world", {}, "####### world"),
    ("escape next to a token", "##{a}#{a}", {"a": "1"}, "#{a}1"),
    ("hash at the end", "#{a}#", {"a": "1"}, "1#"),
)

MISSING = _rows(
    ("echoed", "#{Foo}", {}, "#{Foo}"),
    ("echoed after a hit", "#{Foo}#{Jazz}", {"Foo": "#{Bar}", "Bar": "Baz"}, "Baz#{Jazz}"),
    (
        "echoed per iteration",
        "#{each a in Action}#{a.Size}#{/each}",
        {"Action[x].Name": "Baz", "Action[y].Name": "Baz"},
        "#{a.Size}#{a.Size}",
    ),
    ("echoed with a filter", "#{foo | ToUpper}", {}, "#{foo | ToUpper}"),
    ("unknown filter echoed", "#{Foo | ToBazooka}", {"Foo": "Abc"}, "#{Foo | ToBazooka}"),
    (
        "unknown filter with options echoed, options quoted",
        "#{Foo | ToBazooka 6}",
        {"Foo": "Abc"},
        '#{Foo | ToBazooka "6"}',
    ),
    ("missing JSON path", "#{Test.Something}", {"Test": "#{Test}"}, "#{Test.Something}"),
    ("value resolving to itself", "#{Test}", {"Test": "#{Test.Something}"}, "#{Test.Something}"),
)

INDEXERS = _rows(
    (
        "named indexer",
        "#{Octopus.Action[Package A].Name}",
        {"Octopus.Action[Package A].Name": "MyPackage"},
        "MyPackage",
    ),
    (
        "variable indexer",
        "#{Octopus.Action[#{Package}].Name}",
        {"Package": "Package A", "Octopus.Action[Package A].Name": "MyPackage"},
        "MyPackage",
    ),
    (
        "missing variable indexer",
        "#{Octopus.Action[#{Package}].Name}",
        {"Octopus.Action[Package A].Name": "MyPackage"},
        "#{Octopus.Action[#{Package}].Name}",
    ),
    (
        "indexed self reference",
        "#{MY_VAR}",
        {"MY_VAR": "#{MY_VAR[#{foo}]}", "foo": "bar"},
        "#{MY_VAR[#{foo}]}",
    ),
    ("index with unknown variable", "#{Location[#{Continent}]}", {}, "#{Location[#{Continent}]}"),
    (
        "index with unknown index variable",
        "#{Location[#{Continent}]}",
        {"Location[Europe]": "Madrid"},
        "#{Location[#{Continent}]}",
    ),
    (
        "index with known variable",
        "#{Location[#{Continent}]}",
        {"Location[Europe]": "Madrid", "Continent": "Europe"},
        "Madrid",
    ),
    (
        "symbol index at the end",
        "#{Step[#{action.StepName}]}",
        {"action.StepName": "Step 1", "Step[Step 1]": "Running"},
        "Running",
    ),
    (
        "symbol index in the middle",
        "#{Octopus.Step[#{action.StepName}].Status.Code}",
        {"action.StepName": "Step 1", "Octopus.Step[Step 1].Status.Code": "Running"},
        "Running",
    ),
    (
        "wildcard takes the first (deterministic here)",
        "#{Octopus.Action[*].Name}",
        {"Octopus.Action[Package A].Name": "A", "Octopus.Action[Package B].Name": "B"},
        "A",
    ),
    (
        "index is case-insensitive",
        "#{Octopus.Action[package a].Name}",
        {"Octopus.Action[Package A].Name": "A"},
        "A",
    ),
)

ITERATION = _rows(
    ("empty collection", "Ok#{each nothing in missing}#{nothing}#{/each}", {}, "Ok"),
    (
        "sub-keys with a blank index",
        "#{each a in Octopus.Action}#{a}-#{a.Name}#{/each}",
        {
            "Octopus.Action[Package A].Name": "A",
            "Octopus.Action[Package B].Name": "B",
            "Octopus.Action[].Name": "Blank",
        },
        "Package A-APackage B-B-Blank",
    ),
    (
        "iterator is the index",
        "#{each a in Octopus.Action}#{a}|#{/each}",
        {"Octopus.Action[Package A].Name": "A", "Octopus.Action[Package B].Name": "B"},
        "Package A|Package B|",
    ),
    (
        "nested",
        "#{each a in Octopus.Action}#{each tr in a.TargetRoles}#{a.Name}#{tr}#{/each}#{/each}",
        {
            "Octopus.Action[Package A].Name": "A",
            "Octopus.Action[Package A].TargetRoles": "a,b",
            "Octopus.Action[Package B].Name": "B",
            "Octopus.Action[Package B].TargetRoles": "c",
            "Octopus.Action[].Name": "Z",
            "Octopus.Action[].TargetRoles": "y",
        },
        "AaAbBcZy",
    ),
    (
        "values evaluated",
        "#{each a in Octopus.Action}#{a.Name}#{/each}",
        {
            "PackageA_Name": "A",
            "PackageB_Name": "B",
            "PackageC_Name": "C",
            "Octopus.Action[Package A].Name": "#{PackageA_Name}",
            "Octopus.Action[Package B].Name": "#{PackageB_Name}",
            "Octopus.Action[].Name": "#{PackageC_Name}",
        },
        "ABC",
    ),
    (
        "scoped symbol indexer",
        '#{each action in Octopus.Action}#{if Octopus.Step[#{action.StepName}].Status != "Skipped"}#{Octopus.Step[#{action.StepName}].Details}#{/if}#{/each}',
        {
            "Octopus.Action[Action 1].StepName": "Step 1",
            "Octopus.Action[Action 2].StepName": "Step 2",
            "Octopus.Step[Step 1].Details": "Step 1 Details",
            "Octopus.Step[Step 2].Details": "Step 2 Details",
            "Octopus.Step[Step 1].Status": "Skipped",
            "Octopus.Step[Step 2].Status": "Running",
        },
        "Step 2 Details",
    ),
    (
        "unscoped indexer",
        '#{each action in Octopus.Action}#{if Octopus.Step[#{SomeOtherVariable}].Status == "Skipped"}#{Octopus.Step[#{SomeOtherVariable}].Details}#{/if}#{/each}',
        {
            "Octopus.Action[Action 1].StepName": "Step 1",
            "Octopus.Action[Action 2].StepName": "Step 2",
            "Octopus.Step[OtherVariableValue].Details": "Octopus",
            "Octopus.Step[OtherVariableValue].Status": "Skipped",
            "SomeOtherVariable": "OtherVariableValue",
        },
        "OctopusOctopus",
    ),
    (
        "specials",
        "#{each a in Numbers}#{a} First:#{Octopus.Template.Each.First} Last:#{Octopus.Template.Each.Last} Index:#{Octopus.Template.Each.Index}, #{/each}",
        {"Numbers": "A,B,C"},
        "A First:True Last:False Index:0, B First:False Last:False Index:1, C First:False Last:True Index:2, ",
    ),
    (
        "specials in Cephalo spelling",
        "#{each a in N}#{Cephalo.Template.Each.Index}#{/each}",
        {"N": "x,y"},
        "01",
    ),
    (
        "nested index in an index",
        "#{each a in Octopus.Action.Package}#{a}: #{a.Name} #{/each}",
        {
            "Octopus.Action.Package[container[0]].Name": "A",
            "Octopus.Action.Package[container[1]].Name": "B",
            "Octopus.Action.Package[container[2]].Name": "C",
        },
        "container[0]: A container[1]: B container[2]: C ",
    ),
    ("comma list keeps spaces", "#{each x in L}[#{x}]#{/each}", {"L": "a, b"}, "[a][ b]"),
)

CONDITIONALS = _rows(
    ("truthy", "#{if Truthy}#{Result}#{/if}", {"Result": "result", "Truthy": "true"}, "result"),
    (
        "leading space",
        "#{ if Truthy}#{Result}#{/if}",
        {"Result": "result", "Truthy": "true"},
        "result",
    ),
    (
        "two leading spaces",
        "#{  if Truthy}#{Result}#{/if}",
        {"Result": "result", "Truthy": "true"},
        "result",
    ),
    (
        "trailing space",
        "#{if Truthy }#{Result}#{/if}",
        {"Result": "result", "Truthy": "true"},
        "result",
    ),
    (
        "spaces both sides",
        "#{ if Truthy  }#{Result}#{/if}",
        {"Result": "result", "Truthy": "true"},
        "result",
    ),
    (
        "two spaces after if",
        "#{if  Truthy}#{Result}#{/if}",
        {"Result": "result", "Truthy": "true"},
        "result",
    ),
    (
        "space in body token",
        "#{if Truthy}#{ Result}#{/if}",
        {"Result": "result", "Truthy": "true"},
        "result",
    ),
    (
        "spaces after body token",
        "#{if Truthy}#{Result  }#{/if}",
        {"Result": "result", "Truthy": "true"},
        "result",
    ),
    (
        "equals with spaces",
        '#{if Truthy  == "true"}#{Result}#{/if}',
        {"Result": "result", "Truthy": "true"},
        "result",
    ),
    (
        "not equals with spaces",
        '#{if Truthy  != "false"}#{Result}#{/if}',
        {"Result": "result", "Truthy": "true"},
        "result",
    ),
    (
        "filter in condition with spaces",
        '#{if Truthy  |  ToLower  != "false"}#{Result}#{/if}',
        {"Result": "result", "Truthy": "true"},
        "result",
    ),
    (
        "unless",
        "#{unless Truthy}#{Result}#{/unless}",
        {"Result": "result", "Truthy": "false"},
        "result",
    ),
    ("unknown is falsy", "#{if MyVar}True#{/if}", {}, ""),
    ("unknown is falsy for unless", "#{unless MyVar}False#{/unless}", {}, "False"),
    ("unknowns are equal", "#{if Unknown1 == Unknown2}Equal#{/if}", {}, "Equal"),
    (
        "compare to another variable",
        "#{if Octopus == Compare}#{Result}#{/if}",
        {"Result": "result", "Octopus": "octopus", "Compare": "octopus"},
        "result",
    ),
    (
        "string on the right",
        '#{if Octopus == "octopus"}#{Result}#{/if}',
        {"Result": "result", "Octopus": "octopus"},
        "result",
    ),
    (
        "string on the left",
        '#{if "octopus" == Octopus }#{Result}#{/if}',
        {"Result": "result", "Octopus": "octopus"},
        "result",
    ),
    (
        "negation, string left",
        '#{if "software" != Octopus}#{Result}#{/if}',
        {"Result": "result", "Octopus": "something else"},
        "result",
    ),
    (
        "negation, string right",
        '#{if Octopus != "software"}#{Result}#{/if}',
        {"Result": "result", "Octopus": "something else"},
        "result",
    ),
    (
        "comparison is case-sensitive",
        '#{if Octopus == "Octopus"}yes#{else}no#{/if}',
        {"Octopus": "octopus"},
        "no",
    ),
    (
        "nested",
        '#{if Truthy}#{if Fooey=="foo"}#{Result}#{/if}#{/if}',
        {"Result": "result", "Truthy": "true", "Fooey": "foo"},
        "result",
    ),
    (
        "else taken when true",
        "#{if Truthy}#{Result}#{else}#{ElseResult}#{/if}",
        {"Result": "result", "ElseResult": "elseresult", "Truthy": "true"},
        "result",
    ),
    (
        "else taken when false",
        "#{if Truthy}#{Result}#{else}#{ElseResult}#{/if}",
        {"Result": "result", "ElseResult": "elseresult", "Truthy": "false"},
        "elseresult",
    ),
    (
        "if nested in else",
        '#{if Truthy}#{Result}#{else}#{if Fooey=="foo"}#{ElseResult}#{/if}#{/if}',
        {"Result": "result", "ElseResult": "elseresult", "Fooey": "foo", "Truthy": "false"},
        "elseresult",
    ),
    (
        "null filter in the taken branch",
        "#{if Truthy}#{Result}#{else}#{ | null }#{/if}",
        {"Result": "result", "Truthy": "true"},
        "result",
    ),
    (
        "only a null filter gives None",
        "#{if Truthy}#{Result}#{else}#{ | null }#{/if}",
        {"Result": "result", "Truthy": "false"},
        None,
    ),
    (
        "filter in condition",
        '#{if Hello | Contains "O" }#{Result}#{/if}',
        {"Hello": "HELLO", "Result": "result"},
        "result",
    ),
    (
        "filter then string",
        '#{if Hello | ToLower == "hello"}#{Result}#{/if}',
        {"Hello": "HELLO", "Result": "result"},
        "result",
    ),
    (
        "string then filter",
        '#{if "hello" == Hello | ToLower }#{Result}#{/if}',
        {"Hello": "HELLO", "Result": "result"},
        "result",
    ),
    (
        "filters on both sides",
        "#{if Greeting | ToLower == Hello | ToLower }#{Result}#{/if}",
        {"Greeting": "Hello", "Hello": "HELLO", "Result": "result"},
        "result",
    ),
    (
        "chained filters",
        "#{if Greeting | Trim | ToUpper | ToLower == Hello | ToBase64 | FromBase64 | Trim | ToLower }#{Result}#{/if}",
        {"Greeting": " Hello ", "Hello": "  HELLO ", "Result": "result"},
        "result",
    ),
    (
        "unknown filter echoes the block",
        "#{if Greeting | NonExistingFunction}#{Result}#{/if}",
        {"Greeting": "Hello world", "Result": "result"},
        "#{if Greeting | NonExistingFunction}#{Result}#{/if}",
    ),
    (
        "unknown variable under a filter echoes",
        "#{if Greeting | TpUpper}#{Result}#{/if}",
        {"Result": "result", "MyVar": "Value"},
        "#{if Greeting | TpUpper}#{Result}#{/if}",
    ),
    (
        "StartsWith in condition (docs)",
        '#{if Octopus.Environment.Name | StartsWith "Prod"}live#{/if}',
        {"Octopus.Environment.Name": "Production"},
        "live",
    ),
    ("elseif", "#{if A}a#{elseif B}b#{else}c#{/if}", {"A": "false", "B": "true"}, "b"),
    ("elseif falls to else", "#{if A}a#{elseif B}b#{else}c#{/if}", {"A": "no", "B": "0"}, "c"),
    ("keyword case", "#{IF Flag}yes#{/if}", {"Flag": "True"}, "yes"),
    (
        "escaped quotes in a condition",
        '{"Bar":"#{if Foo == \\"test text\\"}Blaa#{/if}"}',
        {"Foo": "test text"},
        '{"Bar":"Blaa"}',
    ),
)

JSON = _rows(
    (
        "explicit beats JSON (dot)",
        "#{Test.Hello}",
        {
            "Test.Hello": "Go Away",
            "Test": '{"Hello": "World", "Foo": "Bar", "Donkey" : {"Kong": 12}}',
            "Test[Foo]": "Nope",
            "Test.Donkey.Kong": "MARIO",
        },
        "Go Away",
    ),
    (
        "explicit beats JSON (index)",
        "#{Test[Foo]}",
        {
            "Test.Hello": "Go Away",
            "Test": '{"Hello": "World", "Foo": "Bar", "Donkey" : {"Kong": 12}}',
            "Test[Foo]": "Nope",
            "Test.Donkey.Kong": "MARIO",
        },
        "Nope",
    ),
    (
        "explicit beats JSON (deep)",
        "#{Test.Donkey.Kong}",
        {
            "Test.Hello": "Go Away",
            "Test": '{"Hello": "World", "Foo": "Bar", "Donkey" : {"Kong": 12}}',
            "Test[Foo]": "Nope",
            "Test.Donkey.Kong": "MARIO",
        },
        "MARIO",
    ),
    (
        "variable in JSON (index)",
        "#{Test[Foo]}",
        {"Prop": "Foo", "Val": "Bar", "Test": '{#{Prop}: "#{Val}"}'},
        "Bar",
    ),
    (
        "variable in JSON (dot)",
        "#{Test.Foo}",
        {"Prop": "Foo", "Val": "Bar", "Test": '{#{Prop}: "#{Val}"}'},
        "Bar",
    ),
    (
        "variable in JSON (symbol index)",
        "#{Test[#{Prop}]}",
        {"Prop": "Foo", "Val": "Bar", "Test": '{#{Prop}: "#{Val}"}'},
        "Bar",
    ),
    ("simple indexing", "#{Test[Hello]}", {"Test": '{"Hello": "World"}'}, "World"),
    ("simple dot notation", "#{Test.Hello}", {"Test": '{"Hello": "World"}'}, "World"),
    (
        "deep",
        "#{Test[Hello][World][Foo][Bar]}",
        {"Test": '{"Hello": {"World": {"Foo": {"Bar": 12 }}}}'},
        "12",
    ),
    (
        "arrays",
        "#{Test.Items[1].Name}",
        {"Test": '{"Items": [{"Name": "Toast"}, {"Name": "Bread"}]}'},
        "Bread",
    ),
    (
        "array index 0 (docs)",
        "#{Custom.MyJson.Sizes[0].price}",
        {"Custom.MyJson": '{"Sizes": [{"price": "9.99"}, {"price": "11"}]}'},
        "9.99",
    ),
    ("raw JSON returned", "#{Test.Foo}", {"Test": '{"Foo": {"Bar":"11"}}'}, '{"Bar":"11"}'),
    (
        "non-direct inner JSON",
        "#{Test.Name}",
        {"Test": '{Name: "#{Test.Value}", Desc: "Monkey", Value: 12}'},
        "12",
    ),
    (
        "direct inner JSON is unresolvable",
        "#{Test.Sizes.Small.Price}",
        {
            "Test": '{Sizes: {Small: "#{Test.Sizes.Large.Price}", Large: "15"}}", Desc: "Monkey", Value: 12}'
        },
        "#{Test.Sizes.Small.Price}",
    ),
    ("invalid JSON not walked", "#{Test.Name}", {"Test": "{Name: NoQuote}"}, "#{Test.Name}"),
    (
        "array iterator",
        '#{each number in Test}#{number}#{if Octopus.Template.Each.Last == "False"}-#{/if}#{/each}',
        {"Test": "[2,3,5,8]"},
        "2-3-5-8",
    ),
    (
        "null is not iterated",
        "Before:#{each number in Test.Blah}#{number}#{/each}:After",
        {"Test": "{Blah: null}"},
        "Before::After",
    ),
    (
        "object iterator",
        "#{each size in Octopus.Sizes}#{size}:#{size.Value},#{/each}",
        {"Octopus.Sizes": '{"Small": "11.5",  Large: 15.21}'},
        "Small:11.5,Large:15.21,",
    ),
    (
        "object iterator inner selection",
        "#{each size in Octopus.Sizes}#{size.Key} - #{size.Value.Error}#{/each}",
        {"Octopus.Sizes": '{"X-Large": {"Error": "Not Stocked"}}'},
        "X-Large - Not Stocked",
    ),
    ("null property is empty", "Alpha#{Foo.Bar}bet", {"Foo": "{Bar: null}"}, "Alphabet"),
    (
        "null property is empty under a filter",
        "Alpha#{Foo.Bar | ToUpper}bet",
        {"Foo": "{Bar: null}"},
        "Alphabet",
    ),
    ("booleans print as .NET does", "#{J.On}", {"J": '{"On": true}'}, "True"),
    ("missing property of an object is empty", "[#{J.Nope}]", {"J": '{"On": true}'}, "[]"),
)

CALCULATIONS = _rows(
    *[
        (
            f"calc {expression}",
            f"#{{calc {expression}}}",
            {"A": "5", "B": "7", "The/Var": "9", "Another-Var": "11"},
            expected,
        )
        for expression, expected in [
            ("3+2", "5"),
            ("3-2", "1"),
            ("3*2", "6"),
            ("3/2", "1.5"),
            ("3*2+2*4", "14"),
            ("3*(2+2)*4", "48"),
            ("A+2", "7"),
            ("A+B", "12"),
            ("C+2", "#{C+2}"),
            ("{B}-2", "5"),
            ("2-B", "-5"),
            ("2-4", "-2"),
            ("(B*2)-2", "12"),
            ("2-(B*2)", "-12"),
            ("{B}/2", "3.5"),
            ("2/B", "0.2857142857142857"),
            ("2/{B}", "0.2857142857142857"),
            ("2/4", "0.5"),
            ("0.2*B", "1.4000000000000001"),
            ("B*0.2", "1.4000000000000001"),
            ("{B}*0.2", "1.4000000000000001"),
            ("{Another-Var}-2", "9"),
            ("{The/Var}-2", "7"),
            ("7%2", "1"),
            ("7%7", "0"),
            ("2%7", "2"),
            ("A%B", "5"),
            ("B%A", "2"),
            ("{B}%2", "1"),
            ("B%2", "1"),
            ("{The/Var}%4", "1"),
            ("2+7%4", "5"),
            ("7%4+2", "5"),
            ("2-9%4", "1"),
            ("10%4*2", "4"),
            ("10*4%3", "1"),
            ("(B+3)%4", "2"),
            ("20%(B+1)", "4"),
            ("5.5%2", "#{5.5%2}"),
            ("5%2.5", "#{5%2.5}"),
            ("7%0", "#{7%0}"),
            ("C%2", "#{C%2}"),
            ("B-2", "#{B-2}"),
            ("B/2", "#{B/2}"),
        ]
    ],
    ("calc with spaces", "#{calc A + 2}", {"A": "5"}, "7"),
    ("calc with a non-number", "#{calc A+1}", {"A": "five"}, "#{A+1}"),
    ("calc divide by zero is infinite", "#{calc 1/0}", {}, "∞"),
)


@pytest.mark.parametrize(
    ("template", "variables", "expected"),
    BASICS + ESCAPES + INDEXERS + ITERATION + CONDITIONALS + JSON + CALCULATIONS,
)
def test_octostache_golden(template: str, variables: dict[str, str], expected: str | None) -> None:
    assert evaluate(template, variables) == expected


@pytest.mark.parametrize(("template", "variables", "expected"), MISSING)
def test_unresolved_tokens_are_echoed_and_reported(
    template: str, variables: dict[str, str], expected: str
) -> None:
    evaluation = render(template, variables)
    assert evaluation.text == expected
    assert evaluation.missing
    assert not evaluation.errors


@pytest.mark.parametrize(
    ("template", "variables"),
    [
        ("#{Foo", {"Foo": "Bar"}),
        ("#{Fo[o}", {"Foo": "Bar", "Fo[o]": "Bar"}),
        ("#{each a in Action}", {"Action[a]": "One"}),
        ("#{ }", {"Foo": "Value", " ": "Bar"}),
        ("#{}", {"Foo": "Value"}),
        ("missing start tag#{/if}", {}),
    ],
)
def test_a_syntax_error_returns_the_template_unchanged(
    template: str, variables: dict[str, str]
) -> None:
    evaluation = render(template, variables)
    assert evaluation.text == template
    assert evaluation.errors and evaluation.errors[0].code is not ErrorCode.CYCLE


@pytest.mark.parametrize(
    ("variables", "chain"),
    [
        ({"Foo": "#{Foo}"}, "Foo -> Foo"),
        (
            {"Foo": "#{Fox}", "Fox": "#{Fax}", "Fax": "#{Fix}", "Fix": "#{Foo}"},
            "Foo -> Fox -> Fax -> Fix -> Foo",
        ),
    ],
)
def test_a_self_referencing_loop_is_an_error_naming_the_cycle(
    variables: dict[str, str], chain: str
) -> None:
    evaluation = render("#{Foo}", variables)
    assert evaluation.text is None
    (error,) = evaluation.errors
    assert error.code is ErrorCode.CYCLE
    assert error.message == (
        f'An attempt to parse the variable symbol "Foo" appears to have resulted in a self '
        f"referencing loop ({chain}). Ensure that recursive loops do not exist in the variable values."
    )
    assert evaluate_value("Foo", variables) is None


def test_a_cycle_through_differently_cased_names_is_still_a_cycle() -> None:
    evaluation = render("x #{Foo}", {"Foo": "#{foo}"})
    assert evaluation.errors[0].code is ErrorCode.CYCLE
    assert (evaluation.errors[0].line, evaluation.errors[0].column) == (1, 3)


@pytest.mark.parametrize(
    ("template", "variables", "truthy"),
    [
        ("#{truthy}", {"truthy": "true"}, True),
        ("#{falsey}", {"falsey": "false"}, False),
        ("#{missing}", {"truthy": "true"}, False),
        ("#{exists}", {"exists": "exists"}, True),
        ("#{v}", {"v": "0"}, False),
        ("#{v}", {"v": " No "}, False),
        ("#{v}", {"v": "FALSE"}, False),
        ("#{v}", {"v": ""}, False),
        ("#{v}", {"v": "1"}, True),
        ("#{v}", {"v": "00"}, True),
        ("True", {}, True),
        ("#{calc X+1}", {}, False),
        ("#{Broken", {}, False),
        ("#{v}", {"v": "#{v}"}, False),
    ],
)
def test_evaluate_truthy(template: str, variables: dict[str, str], truthy: bool) -> None:
    assert evaluate_truthy(template, variables) is truthy


def test_evaluate_value_is_octostache_get() -> None:
    variables = {
        "Foo": "Bar",
        "InstallPath": "C:\\#{Directory}",
        "Directory": "MyDirectory",
        "Protocol": "#{Proto}",
    }
    assert evaluate_value("InstallPath", variables) == "C:\\MyDirectory"
    assert evaluate_value("installpath", variables) == "C:\\MyDirectory"
    assert evaluate_value("Protocol", variables) == "#{Proto}"
    assert evaluate_value("Undefined", variables) is None
    assert (
        evaluate_value("A$B", {"A$B": "odd names are still readable"})
        == "odd names are still readable"
    )


def test_a_name_that_is_not_a_path_does_not_shadow_its_prefix() -> None:
    assert evaluate("#{A}", {"A$B": "no", "A": "yes"}) == "yes"


def test_a_later_duplicate_name_wins() -> None:
    assert evaluate("#{name}", {"Name": "first", "NAME": "second"}) == "second"
