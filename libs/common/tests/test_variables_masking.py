"""Sensitive values never reach the log, whole or split across chunks."""

from __future__ import annotations

from cephalo_common.variables import MASK, SensitiveMasker, mask


def stream(masker: SensitiveMasker, chunks: list[str]) -> str:
    return "".join(masker.feed(chunk) for chunk in chunks) + masker.flush()


def test_every_occurrence_is_masked() -> None:
    assert mask("pw=hunter22; again hunter22", ["hunter22"]) == f"pw={MASK}; again {MASK}"


def test_values_of_three_characters_or_fewer_are_not_masked() -> None:
    assert mask("abc abcd", ["abc", "abcd"]) == f"abc {MASK}"


def test_longest_value_first_when_values_overlap() -> None:
    assert mask("password", ["pass", "password"]) == MASK
    assert mask("abcdef", ["abcd", "cdef"]) == MASK
    assert mask("abcdabcd", ["abcd"]) == MASK + MASK


def test_a_value_split_across_chunks_is_masked() -> None:
    masker = SensitiveMasker(["s3cr3t-value"])
    assert stream(masker, ["token: s3c", "r3t-va", "lue done\n"]) == f"token: {MASK} done\n"


def test_only_the_longest_value_minus_one_is_held_back() -> None:
    masker = SensitiveMasker(["secret"])
    assert masker.feed("hello world") == "hello "
    assert masker.feed("!") == "w"
    assert masker.flush() == "orld!"


def test_text_without_values_passes_straight_through() -> None:
    masker = SensitiveMasker([])
    assert masker.feed("anything") == "anything"
    assert masker.flush() == ""


def test_a_mask_spanning_the_held_back_text_is_not_repeated_and_leaks_nothing() -> None:
    masker = SensitiveMasker(["abcdefgh", "fghijklm"])
    output = stream(masker, ["xxabcdefgh", "ijklm yy"])
    assert output == f"xx{MASK} yy"


def test_values_added_mid_stream_are_masked_from_then_on() -> None:
    masker = SensitiveMasker(["first-secret"])
    before = masker.feed("first-secret output-secret ")
    masker.add(["output-secret"])
    assert before + stream(masker, ["output-secret"]) == f"{MASK} output-secret {MASK}"


def test_multiline_values_and_unicode() -> None:
    assert (
        mask("key:\n-----BEGIN\nabc\n-----END\n", ["-----BEGIN\nabc\n-----END"])
        == f"key:\n{MASK}\n"
    )
    assert mask("pässwörd!", ["pässwörd"]) == f"{MASK}!"
