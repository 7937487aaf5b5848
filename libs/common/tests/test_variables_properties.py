"""Properties that must hold for any input (hypothesis; example counts kept small)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cephalo_common.variables import (
    DecidingRule,
    ResolutionContext,
    ScopeField,
    SensitiveMasker,
    SourceKind,
    VariableSource,
    VariableValue,
    escape,
    evaluate,
    mask,
    render,
    resolve,
    validate,
)

FAST = settings(max_examples=75, deadline=None)
NAMES = st.sampled_from(["A", "b", "Octopus.Action[Deploy].Name", "Items[0]", "J"])
VALUES = st.text(alphabet="ab #{}|[].,", max_size=12)
VARIABLES = st.dictionaries(NAMES, VALUES, max_size=5)
TEMPLATE_ALPHABET = '#{}[]|."\\ aAbJ01,=!/ifelsuchn\n'


@FAST
@given(st.text(max_size=200).filter(lambda text: "#{" not in text), VARIABLES)
def test_a_template_without_a_token_is_returned_unchanged(
    text: str, variables: dict[str, str]
) -> None:
    assert evaluate(text, variables) == text


@FAST
@given(st.text(alphabet=st.sampled_from("#{}ab \n$"), max_size=60), VARIABLES)
def test_escaping_round_trips(text: str, variables: dict[str, str]) -> None:
    assert evaluate(escape(text), variables) == text


@FAST
@given(st.text(max_size=80), VARIABLES)
def test_escaping_round_trips_for_any_text(text: str, variables: dict[str, str]) -> None:
    assert evaluate(escape(text), variables) == text


@FAST
@given(st.text(alphabet=TEMPLATE_ALPHABET, max_size=80), VARIABLES)
def test_any_template_evaluates_or_reports_without_raising(
    template: str, variables: dict[str, str]
) -> None:
    evaluation = render(template, variables)
    assert evaluation.text is not None or evaluation.errors
    for error in validate(template):
        assert 0 <= error.position <= len(template) and error.message


FIELDS = [
    ScopeField.ENVIRONMENT,
    ScopeField.ROLE,
    ScopeField.MACHINE,
    ScopeField.CHANNEL,
    ScopeField.TENANT,
    ScopeField.ACTION,
]
SCOPES = st.dictionaries(
    st.sampled_from(FIELDS),
    st.frozensets(st.sampled_from(["x", "y"]), min_size=1, max_size=2),
    max_size=3,
)
SOURCES = st.sampled_from(
    [
        VariableSource(),
        VariableSource(kind=SourceKind.LIBRARY_SET, id="L1", order=0),
        VariableSource(kind=SourceKind.LIBRARY_SET, id="L2", order=1),
        VariableSource(kind=SourceKind.SYSTEM),
    ]
)
CONTEXT = ResolutionContext(
    environment="x",
    machine="x",
    machine_roles=frozenset({"x", "y"}),
    step_roles=frozenset({"x"}),
    channel="y",
    tenant="x",
    action="x",
)
TIES = {DecidingRule.LIBRARY_SET_ORDER, DecidingRule.DECLARATION_ORDER}


@FAST
@given(
    st.lists(st.tuples(SCOPES, SOURCES), min_size=1, max_size=8), st.randoms(use_true_random=False)
)
def test_precedence_is_deterministic_under_any_declaration_order(
    candidates: list[tuple[dict[ScopeField, frozenset[str]], VariableSource]], random: object
) -> None:
    order = list(range(len(candidates)))

    def winner(indexes: list[int]) -> tuple[str | None, DecidingRule]:
        values = [
            VariableValue(
                name="V",
                value=f"value {n}",
                scope=scope,
                source=source,
                declaration_index=indexes[n],
            )
            for n, (scope, source) in enumerate(candidates)
        ]
        resolved = resolve(values, CONTEXT).explain("V")
        assert resolved is not None
        return (resolved.winner.value if resolved.winner else None), resolved.rule

    first, rule = winner(order)
    shuffled = order[:]
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    second, _ = winner(shuffled)
    if rule not in TIES:
        assert first == second


SECRETS = st.lists(st.text(alphabet="ab\n", min_size=1, max_size=9), min_size=1, max_size=4)


@FAST
@given(
    SECRETS,
    st.text(alphabet="abc\n", max_size=120),
    st.lists(st.integers(min_value=1, max_value=12), max_size=40),
)
def test_no_sensitive_value_survives_masking_whatever_the_chunking(
    secrets: list[str], text: str, cuts: list[int]
) -> None:
    masker = SensitiveMasker(secrets)
    output: list[str] = []
    position = 0
    for size in cuts:
        output.append(masker.feed(text[position : position + size]))
        position += size
    output.append(masker.feed(text[position:]))
    output.append(masker.flush())
    masked = "".join(output)
    for secret in secrets:
        if len(secret) > 3:
            assert secret not in masked
    assert masked == mask(text, secrets)
