"""Service messages in script output, output variable names (§1.7) and system variable aliases."""

from __future__ import annotations

import base64

import pytest

from cephalo_common.variables import (
    CreateArtifact,
    MalformedServiceMessage,
    OutputParser,
    OutputVariables,
    ResolutionContext,
    ServiceMessage,
    SetVariable,
    SystemVariables,
    alias_of,
    canonical_name,
    encode_set_variable,
    evaluate,
    output_variable_name,
    parse_service_message,
    resolve,
    with_aliases,
)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_calamaris_set_variable_message() -> None:
    assert parse_service_message(
        "##octopus[setVariable name='VGVzdEE=' value='V29ybGQh']"
    ) == SetVariable("TestA", "World!")


def test_cephalo_dialect_sensitive_and_surrounding_whitespace() -> None:
    line = f"  ##cephalo[setVariable name='{b64('Password')}' value='{b64('s3cr3t')}' sensitive='{b64('True')}']  \n"
    assert parse_service_message(line) == SetVariable("Password", "s3cr3t", sensitive=True)


def test_encode_round_trips() -> None:
    line = encode_set_variable("Url", "https://x/ü", sensitive=True)
    assert parse_service_message(line) == SetVariable("Url", "https://x/ü", sensitive=True)
    assert parse_service_message(encode_set_variable("A", "", dialect="octopus")) == SetVariable(
        "A", ""
    )


def test_create_artifact_and_other_messages() -> None:
    line = f"##octopus[createArtifact path='{b64('/tmp/out.zip')}' originalFilename='{b64('out.zip')}' length='{b64('42')}']"
    assert parse_service_message(line) == CreateArtifact("/tmp/out.zip", "out.zip", 42)
    assert parse_service_message("##octopus[stderr-progress]") == ServiceMessage(
        "stderr-progress", {}
    )
    assert parse_service_message("##octopus[stdout-warning]") == ServiceMessage(
        "stdout-warning", {}
    )


@pytest.mark.parametrize(
    "line",
    [
        "##octopus[setVariable name='not base64!' value='eA==']",
        "##octopus[setVariable value='eA==']",
        "##octopus[setVariable name='eA==' value='eA==' junk]",
        "##cephalo[createArtifact]",
    ],
)
def test_malformed_messages_are_reported_not_raised(line: str) -> None:
    assert isinstance(parse_service_message(line), MalformedServiceMessage)


def test_ordinary_lines_are_not_messages() -> None:
    for line in [
        "hello",
        "## octopus[setVariable]",
        "echo ##octopus[setVariable name='eA==' value='eA==']",
    ]:
        assert parse_service_message(line) is None


def test_the_output_parser_separates_messages_from_log_text_across_chunks() -> None:
    message = encode_set_variable("Url", "https://web01")
    parser = OutputParser()
    events = parser.feed("starting\n" + message[:15])
    events += parser.feed(message[15:] + "\nprogress 10%")
    events += parser.feed(" 20%\ndone")
    events += parser.flush()
    assert events == [
        "starting\n",
        SetVariable("Url", "https://web01"),
        "progress 10%",
        " 20%\ndone",
    ]


def test_output_variable_names_in_both_spellings() -> None:
    assert output_variable_name("Deploy web", "Url") == "Cephalo.Action[Deploy web].Output.Url"
    assert (
        output_variable_name("Deploy web", "Url", "Web01", prefix="Octopus")
        == "Octopus.Action[Deploy web].Output[Web01].Url"
    )
    with pytest.raises(ValueError, match="brackets"):
        output_variable_name("Deploy [blue]", "Url")


def test_output_variables_resolve_per_machine_and_last_writer() -> None:
    outputs = OutputVariables()
    outputs.record("Deploy", "Url", "http://web01", machine="Web01", machine_id="machines-1")
    outputs.record("Deploy", "Url", "http://web02", machine="Web02", machine_id="machines-2")
    outputs.record(
        "Deploy", "Token", "t0ps3cret", machine="Web01", machine_id="machines-1", sensitive=True
    )
    on_web01 = resolve(outputs.values(), ResolutionContext(machine="machines-1")).values()
    assert on_web01["Cephalo.Action[Deploy].Output.Url"] == "http://web01"
    assert on_web01["Octopus.Action[Deploy].Output.Url"] == "http://web01"
    assert on_web01["Octopus.Action[Deploy].Output[Web02].Url"] == "http://web02"
    elsewhere = resolve(outputs.values(), ResolutionContext(machine="machines-9")).values()
    assert elsewhere["Cephalo.Action[Deploy].Output.Url"] == "http://web02"
    assert evaluate("#{Octopus.Action[Deploy].Output[Web01].Url}", elsewhere) == "http://web01"
    assert outputs.sensitive_values() == frozenset({"t0ps3cret"})


def test_system_variable_aliases() -> None:
    assert alias_of("Cephalo.Environment.Name") == "Octopus.Environment.Name"
    assert alias_of("octopus.Release.Number") == "Cephalo.Release.Number"
    assert alias_of("MyVar") is None and alias_of("Cephalo") is None
    assert canonical_name("Octopus.Machine.Name") == "Cephalo.Machine.Name"
    expanded = with_aliases(
        {
            SystemVariables.ENVIRONMENT_NAME: "Production",
            "Octopus.Release.Number": "1.2.3",
            "Octopus.Environment.Name": "explicit",
            "App": "x",
        }
    )
    assert expanded == {
        "Cephalo.Environment.Name": "Production",
        "Octopus.Release.Number": "1.2.3",
        "Octopus.Environment.Name": "explicit",
        "App": "x",
        "Cephalo.Release.Number": "1.2.3",
    }
    assert (
        evaluate("#{Octopus.Environment.Name}/#{Cephalo.Release.Number}", expanded)
        == "explicit/1.2.3"
    )
