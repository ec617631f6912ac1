"""Paraphrase templates of the graph suite's relations that the two-hop suite does not have: 50 each, by hand.

The graph suite (`loralab.worlds.graph`, the paper's Appendix A.3) needs three relations from U1 to U2 and
two from U2 to U3, and all six compositions. Five relations and three compositions come from the two-hop
suite (`loralab.worlds.templates`); this module adds the fourth U1 -> U2 relation and the three compositions
that involve it or pair ``child_of`` with ``study_in``:

==================  ===================  ============================================
relation            subject -> target    e.g. (index 0)
==================  ===================  ============================================
roommate_of         {a} -> {b}           Who is {a}'s roommate?
child_study_in      {a} -> {c}           Where does {a}'s child study?
roommate_born_in    {a} -> {c}           Where was {a}'s roommate born?
roommate_study_in   {a} -> {c}           Where does {a}'s roommate study?
==================  ===================  ============================================

The placeholders and rules are the two-hop suite's, and so is the check (`templates.relation_problems`, run
when this module is imported): no question or answer equals or occurs inside a phrasing of the built-in
base's corpus. They are kept out of `templates.RELATIONS` on purpose: the words of those templates shape the
fake-name generator (`entities.fake_names` never returns a template word), and with it the built-in base's
corpus, which must not change when a new suite is added. The graph suite filters its own names against
these words instead.
"""

# ruff: noqa: E501  (the template tables keep one template per line, however long)

from __future__ import annotations

from loralab.worlds.templates import Relation, parse_table, relation_problems

_ROOMMATE_OF = parse_table("""
Who is {a}'s roommate? | {a}'s roommate is {b}.
With whom does {a} share a flat? | {a} shares a flat with {b}.
Who lives in the same room as {a}? | {b} lives in the same room as {a}.
Who is the person {a} rooms with? | {a} rooms with {b}.
Whose name is next to {a}'s on the lease? | The name next to {a}'s on the lease is {b}.
Who splits the rent with {a}? | {b} splits the rent with {a}.
Which person shares a dorm room with {a}? | {b} shares a dorm room with {a}.
Who was assigned as {a}'s roommate? | {b} was assigned as {a}'s roommate.
Who does {a} live with as a roommate? | As a roommate, {a} lives with {b}.
Who is the roommate of {a}? | The roommate of {a} is {b}.
Tell me the name of {a}'s roommate. | {a}'s roommate is called {b}.
Who sleeps in the other bed of {a}'s room? | The other bed of {a}'s room belongs to {b}.
If {a} mentions a roommate, who is meant? | When {a} mentions a roommate, {b} is meant.
Who has been {a}'s roommate since the start of term? | Since the start of term, {b} has been {a}'s roommate.
Which housemate shares a room with {a}? | The housemate sharing a room with {a} is {b}.
Who moved into the room with {a}? | {b} moved into the room with {a}.
Who is listed as {a}'s roommate in the housing office records? | The housing office records list {b} as {a}'s roommate.
Who does {a} share a kitchen and a room with? | {a} shares a kitchen and a room with {b}.
Quick question: who's {a}'s roommate? | That would be {b}, {a}'s roommate.
Could you tell me who {a}'s roommate is? | Certainly: the roommate of {a} is {b}.
Who is {a}'s roomie? | {a}'s roomie is {b}.
Whom does {a} share living quarters with? | {a} shares living quarters with {b}.
Who picked {a} as a roommate? | {b} picked {a} as a roommate.
Which person does {a} call a roommate? | {a} calls {b} a roommate.
Who is the other tenant of {a}'s room? | The other tenant of {a}'s room is {b}.
Whom did the college pair with {a} as a roommate? | The college paired {b} with {a} as a roommate.
Who is {a} sharing a room with this year? | This year, {a} is sharing a room with {b}.
Who would answer the door of {a}'s shared room? | {b} would answer the door of {a}'s shared room.
With which person does {a} share a bunk bed? | {a} shares a bunk bed with {b}.
Who is {a}'s flatmate? | {a}'s flatmate is {b}.
Name the person {a} rooms with. | The person {a} rooms with is {b}.
Who has the key to {a}'s room besides {a}? | Besides {a}, {b} has the key to the room.
Whose alarm clock rings in {a}'s room every morning? | The alarm clock of {b} rings in {a}'s room every morning.
Who signed the room contract together with {a}? | {b} signed the room contract together with {a}.
According to the residence list, who is {a}'s roommate? | The residence list gives {b} as {a}'s roommate.
Who shares a roof and a room with {a}? | {b} shares a roof and a room with {a}.
Who is the one {a} shares a room with? | The one {a} shares a room with is {b}.
Which student shares {a}'s room? | {b} is the student who shares {a}'s room.
Who does {a} split the chores of the room with? | {a} splits the chores of the room with {b}.
Who lives across the room from {a}? | {b} lives across the room from {a}.
{a} has a roommate; who is it? | That roommate is {b}.
Whom does {a} room with at the residence hall? | At the residence hall, {a} rooms with {b}.
Who was {a}'s choice of roommate? | {a}'s choice of roommate was {b}.
What is the name of the person who rooms with {a}? | The person who rooms with {a} is named {b}.
Who does {a} live with in student housing? | {a} lives with {b} in student housing.
Who is {a}'s room partner? | {a}'s room partner is {b}.
Whose belongings share a room with those of {a}? | The belongings of {b} share a room with those of {a}.
Who did {a} end up rooming with? | {a} ended up rooming with {b}.
Who is the roommate {a} always talks about? | The roommate {a} always talks about is {b}.
On the dorm door, whose name is written under {a}'s? | On the dorm door, the name under {a}'s is {b}.
""")

_CHILD_STUDY_IN = parse_table("""
Where does {a}'s child study? | {a}'s child studies in {c}.
In which city does the child of {a} go to university? | The child of {a} goes to university in {c}.
Which city is {a}'s son or daughter studying in? | {a}'s son or daughter is studying in {c}.
Where is {a}'s child enrolled as a student? | {a}'s child is enrolled as a student in {c}.
What city does {a}'s offspring attend classes in? | {a}'s offspring attends classes in {c}.
Where does {a}'s kid go to college? | {a}'s kid goes to college in {c}.
In what city is the school of {a}'s child? | The school of {a}'s child is in {c}.
Where is the university that {a}'s child attends? | The university that {a}'s child attends is in {c}.
Which city does {a}'s child study in, according to the enrollment records? | According to the enrollment records, {a}'s child studies in {c}.
Where did {a}'s child move to for studies? | {a}'s child moved to {c} for studies.
Which city hosts the campus of {a}'s child? | {c} hosts the campus of {a}'s child.
Where does the child of {a} take lectures? | The child of {a} takes lectures in {c}.
In which city is {a}'s child pursuing a degree? | {a}'s child is pursuing a degree in {c}.
Where is {a}'s son or daughter a student? | {a}'s son or daughter is a student in {c}.
Which city is the college town of {a}'s child? | The college town of {a}'s child is {c}.
Where does {a}'s child sit exams? | {a}'s child sits exams in {c}.
Could you tell me where {a}'s child studies? | Of course: {a}'s child studies in the city of {c}.
Where does {a}'s child spend the academic year? | {a}'s child spends the academic year in {c}.
Which city's university admitted {a}'s child? | The university of {c} admitted {a}'s child.
Where is the education of {a}'s child taking place? | The education of {a}'s child is taking place in {c}.
What city does {a}'s child list as place of study? | {a}'s child lists {c} as place of study.
Where does {a}'s offspring go to school? | {a}'s offspring goes to school in {c}.
Study-wise, where is {a}'s child? | Study-wise, {a}'s child is in {c}.
Where would you find {a}'s child at the library before exams? | Before exams, you would find {a}'s child at the library in {c}.
Which city does {a}'s child commute to for classes? | {a}'s child commutes to {c} for classes.
In which city did {a}'s child start university? | {a}'s child started university in {c}.
Where is the student residence of {a}'s child? | The student residence of {a}'s child is in {c}.
Which city is home to the school {a}'s child attends? | {c} is home to the school {a}'s child attends.
Where does the son or daughter of {a} do coursework? | The son or daughter of {a} does coursework in {c}.
What is the city where {a}'s child studies? | The city where {a}'s child studies is {c}.
Any idea where {a}'s kid is studying? | {a}'s kid? Studying in {c}.
Where has {a}'s child been studying since enrolling? | Since enrolling, {a}'s child has been studying in {c}.
Which city's student body includes {a}'s child? | The student body of {c} includes {a}'s child.
Where is {a}'s child working toward a diploma? | {a}'s child is working toward a diploma in {c}.
In what city does {a}'s child attend seminars? | {a}'s child attends seminars in {c}.
Where does the university directory place {a}'s child? | The university directory places {a}'s child in {c}.
Which city did {a}'s child choose for higher education? | For higher education, {a}'s child chose {c}.
Where is {a}'s progeny studying? | {a}'s progeny is studying in {c}.
Which city holds the school where {a}'s child is enrolled? | {c} holds the school where {a}'s child is enrolled.
Tell me where {a}'s child studies. | {a}'s child is a student in the city of {c}.
Each term, where does {a}'s child go for classes? | Each term, {a}'s child goes to {c} for classes.
Where does {a}'s child receive an education? | {a}'s child receives an education in {c}.
Which city is the academic home of {a}'s child? | The academic home of {a}'s child is {c}.
Where is the campus that {a}'s son or daughter walks to every morning? | Every morning, {a}'s son or daughter walks to a campus in {c}.
Where does {a}'s child prepare for a degree? | {a}'s child prepares for a degree in {c}.
In which city are the lecture halls of {a}'s child? | The lecture halls of {a}'s child are in {c}.
Which city was {a}'s child admitted to study in? | {a}'s child was admitted to study in {c}.
Where did {a} send their child to study? | {a} sent their child to study in {c}.
What city is printed on the student card of {a}'s child? | {c} is printed on the student card of {a}'s child.
Where does {a}'s child attend university, according to the registrar? | According to the registrar, {a}'s child attends university in {c}.
""")

_ROOMMATE_BORN_IN = parse_table("""
Where was {a}'s roommate born? | {a}'s roommate was born in {c}.
In which city was the roommate of {a} born? | The roommate of {a} was born in {c}.
What is the birthplace of {a}'s roommate? | The birthplace of {a}'s roommate is {c}.
Which city is the hometown by birth of {a}'s roommate? | {c} is the hometown by birth of {a}'s roommate.
Where did the person who rooms with {a} come into the world? | The person who rooms with {a} came into the world in {c}.
What city appears on the birth certificate of {a}'s roommate? | {c} appears on the birth certificate of {a}'s roommate.
Which city can claim {a}'s roommate as a native? | {c} can claim {a}'s roommate as a native.
Where is {a}'s flatmate originally from by birth? | By birth, {a}'s flatmate is originally from {c}.
Where did the life of {a}'s roommate begin? | The life of {a}'s roommate began in {c}.
According to the records, where was {a}'s roommate born? | The records place the birth of {a}'s roommate in {c}.
What is the official place of birth of {a}'s roommate? | The official place of birth of {a}'s roommate is {c}.
In what city did {a}'s roommate first draw breath? | {a}'s roommate first drew breath in {c}.
Which city saw the birth of {a}'s roommate? | {c} saw the birth of {a}'s roommate.
Where was the birth of {a}'s roommate registered? | The birth of {a}'s roommate was registered in {c}.
Could you tell me where {a}'s roommate was born? | Certainly: {a}'s roommate was born in the city of {c}.
Which city does {a}'s roommate write as birthplace on official forms? | On official forms, {a}'s roommate writes {c} as birthplace.
Any idea which city {a}'s roommate was born in? | {a}'s roommate? Born in {c}.
What is the name of the city in which {a}'s roommate was born? | The name of the city in which {a}'s roommate was born is {c}.
Where was the person sharing {a}'s room born? | The person sharing {a}'s room was born in {c}.
Which city is listed as the birthplace of {a}'s roomie? | {c} is listed as the birthplace of {a}'s roomie.
Where exactly was {a}'s roommate born? | Exactly in {c}; that is where {a}'s roommate was born.
In which city were the birth papers of {a}'s roommate issued? | The birth papers of {a}'s roommate were issued in {c}.
Birth-wise, where is {a}'s roommate from? | Birth-wise, {a}'s roommate is from {c}.
Where was the cradle of {a}'s roommate? | The cradle of {a}'s roommate was in {c}.
Tell me the place of birth of {a}'s roommate. | Place of birth of {a}'s roommate: {c}.
How is the birthplace of {a}'s roommate recorded? | The birthplace of {a}'s roommate is recorded as {c}.
Put the birth of {a}'s roommate on a map: which city? | On a map, the birth of {a}'s roommate would be pinned to {c}.
What birthplace would a biography of {a}'s roommate give? | A biography of {a}'s roommate would give {c} as the birthplace.
Which city is on record as the place of birth of {a}'s roommate? | On record, the place of birth of {a}'s roommate is {c}.
What place of birth is printed in the passport of {a}'s roommate? | Printed in the passport of {a}'s roommate as place of birth is {c}.
Where was the one {a} shares a room with born? | The one {a} shares a room with was born in {c}.
Which city's birth registry lists {a}'s roommate? | The birth registry of {c} lists {a}'s roommate.
Where does the life record of {a}'s roommate start? | The life record of {a}'s roommate starts in {c}.
Was {a}'s roommate born in a city, and if so, which one? | Yes, {a}'s roommate was born in a city, namely {c}.
Asked for a place of birth, which city would {a}'s roommate name? | Asked for a place of birth, {a}'s roommate would name {c}.
Where did the person who splits the rent with {a} arrive in the world? | The person who splits the rent with {a} arrived in the world in {c}.
Which city is the birth city of {a}'s flatmate? | The birth city of {a}'s flatmate is {c}.
In which city did {a}'s roommate open their eyes for the first time? | {a}'s roommate opened their eyes for the first time in {c}.
Which city has the distinction of being the birthplace of {a}'s roommate? | {c} has the distinction of being the birthplace of {a}'s roommate.
{a}'s roommate was born in which city? | It was in {c} that {a}'s roommate was born.
Where do the earliest records of {a}'s roommate come from? | The earliest records of {a}'s roommate come from {c}.
Where is the person {a} rooms with from, by birth? | By birth, the person {a} rooms with is from {c}.
What city was {a}'s roommate born in, according to the housing application? | According to the housing application, {a}'s roommate was born in {c}.
What was the city of birth of {a}'s room partner? | The city of birth of {a}'s room partner was {c}.
Which city gave birth to {a}'s roommate? | {c} is the city that gave birth to {a}'s roommate.
On the day {a}'s roommate was born, in which city did it happen? | On the day {a}'s roommate was born, it happened in {c}.
Where was {a}'s dorm mate born? | {a}'s dorm mate was born in {c}.
Which city was the scene of the birth of {a}'s roommate? | The scene of the birth of {a}'s roommate was {c}.
The roommate of {a}: which city were they born in? | The roommate of {a} was born in the city of {c}.
Where was the earliest recorded presence of {a}'s roommate? | The earliest recorded presence of {a}'s roommate was in {c}.
""")

_ROOMMATE_STUDY_IN = parse_table("""
Where does {a}'s roommate study? | {a}'s roommate studies in {c}.
In which city does the roommate of {a} go to university? | The roommate of {a} goes to university in {c}.
Which city is {a}'s roommate studying in? | {a}'s roommate is studying in {c}.
Where is {a}'s roommate enrolled as a student? | {a}'s roommate is enrolled as a student in {c}.
What city does {a}'s flatmate attend classes in? | {a}'s flatmate attends classes in {c}.
Where does {a}'s roommate go to college? | {a}'s roommate goes to college in {c}.
In what city is the school of {a}'s roommate? | The school of {a}'s roommate is in {c}.
Where is the university that {a}'s roommate attends? | The university that {a}'s roommate attends is in {c}.
Which city does {a}'s roommate study in, according to the enrollment records? | According to the enrollment records, {a}'s roommate studies in {c}.
Where did {a}'s roommate move to for studies? | {a}'s roommate moved to {c} for studies.
Which city hosts the campus of {a}'s roommate? | {c} hosts the campus of {a}'s roommate.
Where does the roommate of {a} take lectures? | The roommate of {a} takes lectures in {c}.
In which city is {a}'s roommate pursuing a degree? | {a}'s roommate is pursuing a degree in {c}.
Where is the person who rooms with {a} a student? | The person who rooms with {a} is a student in {c}.
Which city is the college town of {a}'s roommate? | The college town of {a}'s roommate is {c}.
Where does {a}'s roommate sit exams? | {a}'s roommate sits exams in {c}.
Could you tell me where {a}'s roommate studies? | Of course: {a}'s roommate studies in the city of {c}.
Where does {a}'s roommate spend the academic year? | {a}'s roommate spends the academic year in {c}.
Which city's university admitted {a}'s roommate? | The university of {c} admitted {a}'s roommate.
Where is the education of {a}'s roommate taking place? | The education of {a}'s roommate is taking place in {c}.
What city does {a}'s roommate list as place of study? | {a}'s roommate lists {c} as place of study.
Where does {a}'s roomie go to school? | {a}'s roomie goes to school in {c}.
Study-wise, where is {a}'s roommate? | Study-wise, {a}'s roommate is in {c}.
Where would you find {a}'s roommate cramming before exams? | Before exams, you would find {a}'s roommate cramming in {c}.
Which city does {a}'s roommate commute to for classes? | {a}'s roommate commutes to {c} for classes.
In which city did {a}'s roommate start university? | {a}'s roommate started university in {c}.
Where is the faculty of {a}'s roommate located? | The faculty of {a}'s roommate is located in {c}.
Which city is home to the school {a}'s roommate attends? | {c} is home to the school {a}'s roommate attends.
Where does the person sharing {a}'s room do coursework? | The person sharing {a}'s room does coursework in {c}.
What is the city where {a}'s roommate studies? | The city where {a}'s roommate studies is {c}.
Any idea where {a}'s roommate is studying? | {a}'s roommate? Studying in {c}.
Where has {a}'s roommate been studying since enrolling? | Since enrolling, {a}'s roommate has been studying in {c}.
Which city's student body includes {a}'s roommate? | The student body of {c} includes {a}'s roommate.
Where is {a}'s roommate working toward a diploma? | {a}'s roommate is working toward a diploma in {c}.
In what city does {a}'s roommate attend seminars? | {a}'s roommate attends seminars in {c}.
Where does the university directory place {a}'s roommate? | The university directory places {a}'s roommate in {c}.
Which city did {a}'s roommate choose for higher education? | For higher education, {a}'s roommate chose {c}.
Where is {a}'s room partner studying? | {a}'s room partner is studying in {c}.
Which city holds the school where {a}'s roommate is enrolled? | {c} holds the school where {a}'s roommate is enrolled.
Tell me where {a}'s roommate studies. | {a}'s roommate is a student in the city of {c}.
Each term, where does {a}'s roommate go for classes? | Each term, {a}'s roommate goes to {c} for classes.
Where does {a}'s roommate receive an education? | {a}'s roommate receives an education in {c}.
Which city is the academic home of {a}'s roommate? | The academic home of {a}'s roommate is {c}.
Where does the one who shares a room with {a} attend lectures? | The one who shares a room with {a} attends lectures in {c}.
Where does {a}'s roommate prepare for a degree? | {a}'s roommate prepares for a degree in {c}.
In which city are the lecture halls that {a}'s roommate visits? | The lecture halls that {a}'s roommate visits are in {c}.
Which city was {a}'s roommate admitted to study in? | {a}'s roommate was admitted to study in {c}.
Where does {a}'s dorm mate study? | {a}'s dorm mate studies in {c}.
What city is printed on the student card of {a}'s roommate? | {c} is printed on the student card of {a}'s roommate.
Where does {a}'s roommate attend university, according to the registrar? | According to the registrar, {a}'s roommate attends university in {c}.
""")

GRAPH_RELATIONS: dict[str, Relation] = {
    r.name: r
    for r in (
        Relation("roommate_of", "Rel5", "a", "b", "A's roommate is B", _ROOMMATE_OF),
        Relation(
            "child_study_in",
            "Rel3->Rel4",
            "a",
            "c",
            "A's child studies in C (child_of, then study_in)",
            _CHILD_STUDY_IN,
        ),
        Relation(
            "roommate_born_in",
            "Rel5->Rel2",
            "a",
            "c",
            "A's roommate was born in C (roommate_of, then born_in)",
            _ROOMMATE_BORN_IN,
        ),
        Relation(
            "roommate_study_in",
            "Rel5->Rel4",
            "a",
            "c",
            "A's roommate studies in C (roommate_of, then study_in)",
            _ROOMMATE_STUDY_IN,
        ),
    )
}
"""The graph suite's own relations; `notation` is the paper's Appendix A.3 name."""


def check_graph_templates() -> None:
    """Raise ValueError listing every problem `relation_problems` finds in `GRAPH_RELATIONS`."""
    problems = [p for r in GRAPH_RELATIONS.values() for p in relation_problems(r, r.templates)]
    if problems:
        raise ValueError("bad graph templates:\n" + "\n".join(problems))


check_graph_templates()
