"""The vocabularies that templates sample from (`sample(names)`, `sample(fraction_alnum)`, ...).

GSM-Symbolic's templates name these lists but the release does not include them, so the project writes its
own. A list holds plain strings (names, items) or `Worded` values: a number together with the words that
show it in the text ("twice" is 2, "a third" is 1/3, "0.25" is 1/4). Fractions are exact (`Fraction`), so a
condition such as `is_int(n * frac)` is decided without rounding error.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

Number = int | float | Fraction


@dataclass(frozen=True)
class Worded:
    """A number shown as words: renders as `text`, computes as `value`; `w[0]` is the text, `w[1]` the value."""

    text: str
    value: Number

    def __str__(self) -> str:
        return self.text

    def __getitem__(self, index: int) -> str | Number:
        return (self.text, self.value)[index]


def _words(text: str) -> list[str]:
    return text.split()


_ONES = _words(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
)
_TENS = _words("_ _ twenty thirty forty fifty sixty seventy eighty ninety")


def number_words(n: int) -> str:
    """English words for 0 <= n < 1,000,000: 42 -> "forty-two", 305 -> "three hundred five"."""
    if not 0 <= n < 1_000_000:
        raise ValueError(f"number_words: {n} is outside 0..999999")
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {number_words(rest)}" if rest else "")
    thousands, rest = divmod(n, 1000)
    return f"{number_words(thousands)} thousand" + (f" {number_words(rest)}" if rest else "")


def _worded(pairs: str) -> list[Worded]:
    """`"half=1/2; twice=2"` -> [Worded("half", Fraction(1, 2)), Worded("twice", 2)]; "0.25" stays a float."""
    out = []
    for item in pairs.split(";"):
        text, value = item.rsplit("=", 1)
        value = value.strip()
        if "." in value:  # a decimal stays a float, so a solution shows it as "0.25"
            out.append(Worded(text.strip(), float(value)))
            continue
        number = Fraction(value)
        out.append(Worded(text.strip(), number.numerator if number.denominator == 1 else number))
    return out


NAMES_MALE = _words(
    "Adam Alfie Amir Arjun Ben Caleb Carlos Dario Dev Eli Emil Felix Finn Gabe Hamza Hugo Ian Isaac Jonah "
    "Kai Kenji Leo Liam Luca Malik Marcus Mateo Milo Nico Omar Oscar Pablo Raj Rafael Sami Theo Tomas "
    "Victor Wes Yusuf Zane"
)
NAMES_FEMALE = _words(
    "Ada Aisha Alma Amara Bea Carla Chloe Daria Elena Elif Emma Esme Fatima Freya Gemma Hana Ines Iris "
    "Jade Keiko Lara Leila Lina Lucia Maya Mira Nadia Nora Olga Priya Rosa Ruth Sara Sofia Tara Uma "
    "Vera Wanda Yara Zoe"
)
NAMES = sorted(NAMES_MALE + NAMES_FEMALE + _words("Alex Jordan Kim Robin Sam Taylor"))

VOCABULARIES: dict[str, list[str] | list[Worded]] = {
    "names": NAMES,
    "names_male": NAMES_MALE,
    "names_female": NAMES_FEMALE,
    "currencies_sym": ["$", "€", "£"],
    "fruits": _words("apple banana lemon mango orange pear plum kiwi apricot lime"),
    "colors": _words("red blue green yellow orange purple pink white black brown"),
    "sports": _words("soccer tennis basketball volleyball hockey baseball swimming cycling"),
    "cities": ["Lisbon", "Nairobi", "Oslo", "Lima", "Hanoi", "Denver", "Porto", "Quito", "Seoul", "Perth"],
    "weekdays": _words("Monday Tuesday Wednesday Thursday Friday Saturday Sunday"),
    "weights_sm": ["ounce", "gram"],
    "weights_med": ["pound", "kilogram"],
    "length_lg": ["mile", "kilometer"],
    # Numbers shown as words. The order of each list is part of its meaning: templates slice them
    # (`fraction_nums[:3]` takes the three simplest fractions).
    "fractions": _worded("half=1/2; a third=1/3; a quarter=1/4; a fifth=1/5; a tenth=1/10"),
    "fraction_alph": _worded(
        "half=1/2; a third=1/3; a quarter=1/4; a fifth=1/5; a tenth=1/10; two-thirds=2/3; three-quarters=3/4"
    ),
    "fraction_nums": _worded("1/2=1/2; 1/3=1/3; 1/4=1/4; 2/3=2/3; 3/4=3/4; 1/5=1/5; 2/5=2/5; 1/10=1/10"),
    "fraction_alnum": _worded(
        "half=1/2; 1/2=1/2; one-third=1/3; 1/3=1/3; two-thirds=2/3; one-quarter=1/4; 1/4=1/4; "
        "three-quarters=3/4; one-fifth=1/5; 1/5=1/5; three-fifths=3/5; 1/10=1/10"
    ),
    "fraction_decimals": _worded("0.1=0.1; 0.2=0.2; 0.25=0.25; 0.4=0.4; 0.5=0.5; 0.75=0.75"),
    "multi_times": _worded("twice=2; three times=3; four times=4; five times=5; half=1/2"),
    "multiple_ice": _worded("twice=2; three times=3; four times=4"),
    "multiple": _worded("double=2; triple=3; quadruple=4"),
}
