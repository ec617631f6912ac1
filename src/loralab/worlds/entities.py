"""Entity pools: the real lists (familiar to the built-in base) and a generator of pronounceable fake names.

Fake names live in two disjoint spaces chosen by a hash of the lower-cased name:
- `background`: one-off names that fill the built-in base's pretraining corpus, so that the model has seen
  countless rare names (a tiny base that never saw any cannot process a new name at all);
- `experiment`: names for FF/HH datasets. No experiment name can occur in the corpus, whatever its size.
Neither space contains a word of a real person's name or a real city.
"""

from __future__ import annotations

import hashlib
import random
import re
from functools import cache
from typing import Literal

from loralab.worlds import corpus_templates, templates
from loralab.worlds.pools import REAL_CITIES, REAL_PEOPLE

Space = Literal["experiment", "background"]
Kind = Literal["person", "city"]

_ONSETS = (
    "b",
    "d",
    "f",
    "g",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "z",
    "br",
    "dr",
    "fr",
    "gr",
    "kr",
    "pr",
    "tr",
    "st",
    "sk",
    "sl",
    "th",
    "sh",
    "ch",
    "j",
    "h",
    "w",
)
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "i", "o", "ai", "ou", "ea")
_CODAS = ("", "", "", "n", "r", "l", "k", "s", "x", "nt", "sk", "m", "th")
_CITY_ENDS = ("ton", "vale", "burg", "mere", "wick", "port", "holm", "dor", "ara", "ith", "ford", "mont")


@cache
def _real_words() -> frozenset[str]:
    words = {w.lower() for name in REAL_PEOPLE for w in name.replace("-", " ").split()}
    words |= {w.lower() for city in REAL_CITIES for w in city.split()}
    words |= {c.lower() for c in REAL_CITIES}
    # nor any word a template uses (a fake name must never read as an ordinary word of the corpus or a prompt)
    texts = [str(v) for v in vars(corpus_templates).values() if isinstance(v, (tuple, dict))]
    texts += [str(v) for v in templates.RELATION_TEMPLATES.values()]
    words |= {w.lower() for w in re.findall(r"[A-Za-z]+", " ".join(texts))}
    return frozenset(words)


def name_space(name: str) -> Space:
    """Which fake-name space a name belongs to (a quarter of all names are reserved for experiments)."""
    digest = hashlib.blake2b(name.lower().encode(), digest_size=2).digest()
    return "experiment" if digest[0] % 4 == 0 else "background"


def _candidate(rng: random.Random, kind: Kind) -> str:
    syllables = rng.choice((1, 2, 2, 3)) if kind == "person" else rng.choice((1, 2))
    word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables))
    word += rng.choice(_CITY_ENDS) if kind == "city" else rng.choice(_CODAS)
    return word.capitalize()


def fake_names(n: int, kind: Kind, space: Space, seed: int = 0) -> list[str]:
    """`n` distinct pronounceable names of `kind` from `space`, deterministic in `seed`.

    Names are 4-12 letters, never a word of a real name or city, and always in the requested space.
    """
    salt = {"person": 11, "city": 23}[kind] + {"experiment": 101, "background": 211}[space]
    rng = random.Random(seed * 1_000_003 + salt)
    real = _real_words()
    seen: set[str] = set()
    out: list[str] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 200 * n + 10_000:
            raise RuntimeError(f"could not generate {n} distinct {kind} names in space {space}")
        name = _candidate(rng, kind)
        if not 4 <= len(name) <= 12 or name.lower() in real or name in seen or name_space(name) != space:
            continue
        seen.add(name)
        out.append(name)
    return out
