import pytest

from photo_organizer.search.grams import found_in_run, squeeze, text_grams


@pytest.mark.parametrize(
    ("text", "squeezed"),
    [
        ("No Parking!", "noparking"),  # ASCII: the fast path
        ("TOTAL 12.50 EUR\tvat_1", "total1250eurvat1"),
        ("", ""),
        ("Café Ünïcode", "cafeunicode"),  # accents folded after NFKD
        ("Straße ﬁsh ½ x²", "strassefish12x2"),  # compatibility forms and casefold
    ],
)
def test_squeeze_keeps_folded_letters_and_digits_of_ascii_and_unicode_text(text, squeezed):
    assert squeeze(text) == squeezed


def test_a_word_inside_an_ascii_run_is_found_by_its_grams():
    grams = text_grams("NOPARKINGANYTIME")
    assert {"par", "ark", "rki", "kin", "ing"} <= grams
    assert found_in_run("parking", "NOPARKINGANYTIME")
