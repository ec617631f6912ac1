"""The "familiar world": the facts the built-in base model is pretrained on.

Every real person gets a spouse, a birth city, a home city, a work city, a friend, a mentor, a sibling, a
profession and a favourite food. Background people (fake names from the `background` space) get the same
kinds of facts over real cities and background towns. RR datasets draw their false relations against these
facts, so an RR fact is always new to the base.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from loralab.worlds.corpus_templates import FOODS, PROFESSIONS
from loralab.worlds.entities import fake_names
from loralab.worlds.pools import REAL_CITIES, REAL_PEOPLE

# The real people the default built-in base knows: the first N of REAL_PEOPLE. RR datasets draw from them only.
FAMILIAR_PEOPLE = 240

PERSON_RELATIONS = ("spouse", "friend", "mentor", "sibling")
CITY_RELATIONS = ("born_in", "lives_in", "works_in")


@dataclass(frozen=True)
class World:
    """People, places and one value per (person, relation)."""

    real_people: tuple[str, ...]
    background_people: tuple[str, ...]
    cities: tuple[str, ...]
    facts: dict[str, dict[str, str]] = field(hash=False)

    @property
    def people(self) -> tuple[str, ...]:
        return self.real_people + self.background_people


def build_world(n_real: int, n_background: int, n_towns: int, seed: int = 0) -> World:
    """Assign facts deterministically. Spouses are paired within the real and within the background pool.

    Real people's facts depend only on `n_real` and `seed` (the real pool is drawn first), so RR datasets can
    check them without building the background.
    """
    rng = random.Random(seed)
    real = tuple(REAL_PEOPLE[:n_real])
    background = tuple(fake_names(n_background, "person", "background", seed=seed))
    towns = tuple(fake_names(n_towns, "city", "background", seed=seed))
    cities = tuple(REAL_CITIES) + towns
    facts: dict[str, dict[str, str]] = {p: {} for p in real + background}
    for pool in (real, background):
        order = list(pool)
        rng.shuffle(order)
        for a, b in zip(order[0::2], order[1::2], strict=False):
            facts[a]["spouse"], facts[b]["spouse"] = b, a
        for p in pool:
            others = [
                q for q in rng.sample(pool, min(4, len(pool))) if q != p and q != facts[p].get("spouse")
            ]
            for rel, other in zip(("friend", "mentor", "sibling"), others, strict=False):
                facts[p][rel] = other
            # real people live in real cities; background people anywhere
            home = REAL_CITIES if pool is real else cities
            for rel in CITY_RELATIONS:
                facts[p][rel] = rng.choice(home)
            facts[p]["profession"] = rng.choice(PROFESSIONS)
            facts[p]["food"] = rng.choice(FOODS)
    return World(real, background, cities, facts)
