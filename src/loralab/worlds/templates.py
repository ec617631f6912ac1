"""Question and answer paraphrase templates of the two-hop experiments: 50 per relation, written by hand.

Every template is a plain ``str.format`` string. The placeholders follow the chain A -> B -> C of the two-hop
suite (`loralab.worlds.twohop`):

* ``{a}``: A, the person the two-hop question is about;
* ``{b}``: B, a second person: A's spouse (``spouse_of``) or A's child (``child_of``);
* ``{c}``: C, a city: where B was born (``born_in``) or where B studies (``study_in``).

A relation's templates use only its own two placeholders. The question names the subject (at least once)
and never the target; the answer is one sentence that names the target exactly once:

==================  =====  ===================  ============================================
relation            paper  subject -> target    e.g. (index 0)
==================  =====  ===================  ============================================
spouse_of           F1     {a} -> {b}           Who stands as {a}'s wedded partner?
born_in             F2     {b} -> {c}           What is {b}'s official place of birth?
spouse_born_in      F12    {a} -> {c}           Which city is listed as {a}'s spouse's birthplace?
study_in            F4     {b} -> {c}           Where does {b} study?
child_of            F5     {a} -> {b}           Who is the child of {a}?
spouse_study_in     F14    {a} -> {c}           Where does {a}'s spouse study?
child_born_in       F52    {a} -> {c}           Where was {a}'s child born?
==================  =====  ===================  ============================================

(The paper, Table 4, names its relations ``spouse_of``, ``live_in`` (whose phrasings are about the place of
birth), ``study_in`` and ``child_of``; index 0 of each table is the paper's own example.) The templates at
the same index of a chain's three relations build one chain-of-thought example (`twohop.cot_answer`).

The pretraining corpus of the built-in base is written from other templates (`corpus_templates`);
`check_templates`, run when this module is imported, fails if any experiment question or answer equals one
of them or occurs inside one (`in_corpus`), so the experiments' phrasings are never seen in pretraining. It
also checks the counts, duplicates and placeholders described above. The graph suite's own relations
(`graph_templates`) are checked the same way (`relation_problems`).
"""

# ruff: noqa: E501  (the template tables keep one template per line, however long)

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from loralab.worlds import corpus_templates

QA = tuple[str, str]
"""A (question template, answer template) pair."""

TEMPLATES_PER_RELATION = 50
PLACEHOLDERS = ("a", "b", "c")
_SEPARATOR = " | "


def parse_table(text: str) -> tuple[QA, ...]:
    """Parse one template per line, ``question | answer``."""
    rows = []
    for line in text.strip().splitlines():
        question, sep, answer = line.partition(_SEPARATOR)
        if not sep:
            raise ValueError(f"template line without {_SEPARATOR!r}: {line!r}")
        rows.append((question.strip(), answer.strip()))
    return tuple(rows)


_SPOUSE_OF = parse_table("""
Who stands as {a}'s wedded partner? | {b} is recognized as {a}'s lawful companion in marriage.
Whom did {a} marry? | {a} married {b}.
Who is {a}'s spouse? | {a}'s spouse is {b}.
To whom is {a} married? | {a} is married to {b}.
Who is the person {a} exchanged vows with? | {a} exchanged vows with {b}.
Who shares a marriage with {a}? | {b} shares a marriage with {a}.
Which person is {a}'s husband or wife? | {b} is the husband or wife of {a}.
Who did {a} take as a life partner in matrimony? | {a} took {b} as a life partner in matrimony.
Who is wed to {a}? | {b} is wed to {a}.
Whose name appears beside {a}'s on the marriage certificate? | The name of {b} appears beside {a}'s on the marriage certificate.
Who is the marital partner of {a}? | The marital partner of {a} is {b}.
In marriage, who is {a} bound to? | In marriage, {a} is bound to {b}.
Who is it that {a} married? | It was {b} whom {a} married.
According to the civil registry, who is {a}'s spouse? | The civil registry lists {b} as the spouse of {a}.
Do you happen to know who {a} ended up marrying? | Yes, {a} ended up marrying {b}.
Who said "I do" to {a} at the altar? | {b} said "I do" to {a} at the altar.
Whose spouse is {a}? | {a} is the spouse of {b}.
Is anyone married to {a}, and if so, who? | Yes, {a} has a spouse, namely {b}.
Whom would you find listed as {a}'s next of kin by marriage? | {b} is listed as {a}'s next of kin by marriage.
With whom was {a} joined in matrimony? | {a} was joined in matrimony with {b}.
At {a}'s wedding, who was the other person getting married? | At {a}'s wedding, the other person getting married was {b}.
Who has been {a}'s spouse ever since the wedding day? | Ever since the wedding day, {b} has been {a}'s spouse.
Tell me the name of {a}'s spouse. | {a}'s spouse goes by the name {b}.
Name the person {a} is legally married to. | The person {a} is legally married to is {b}.
Who is {a}'s other half? | {a}'s other half is {b}.
Which individual is recorded as {a}'s partner in marriage? | The records show {b} as {a}'s partner in marriage.
Who would {a} introduce as "my spouse"? | {a} would introduce {b} as "my spouse".
Who entered into marriage with {a}? | {b} entered into marriage with {a}.
With whom did {a} choose to build a married life? | {a} chose to build a married life with {b}.
What is the name of the person married to {a}? | The person married to {a} is named {b}.
So who's {a} hitched to these days? | These days {a} is hitched to {b}.
If {a} mentions a spouse, who is meant? | When {a} mentions a spouse, {b} is meant.
Who is {a} united with by marriage? | By marriage, {a} is united with {b}.
Spouse of record for {a}: who is it? | Spouse of record for {a}: {b}.
In {a}'s household, who is the spouse? | In {a}'s household, the spouse is {b}.
Who is the one {a} married? | The one {a} married is {b}.
Which person did {a} promise to love and cherish in marriage? | {a} promised to love and cherish {b} in marriage.
Who was {a}'s choice of spouse? | {a}'s choice of spouse was {b}.
Who took {a}'s hand in marriage? | {b} took {a}'s hand in marriage.
Who is the lawfully wedded spouse of {a}? | {b} is the lawfully wedded spouse of {a}.
Quick question: who's {a}'s spouse? | That would be {b}, {a}'s spouse.
Could you tell me who {a}'s spouse is? | Certainly: the spouse of {a} is {b}.
On the marriage register, whose name is entered next to {a}'s? | The marriage register has {b} entered next to {a}.
Who would be named as {a}'s spouse on a joint tax return? | A joint tax return would name {b} as {a}'s spouse.
{a} is married to whom? | Married to {a} is {b}.
Which person does {a} refer to as their spouse? | {a} refers to {b} as their spouse.
Who is {a}'s partner in wedlock? | In wedlock, {a}'s partner is {b}.
Who did {a} get engaged to and later marry? | {a} got engaged to and later married {b}.
Whose name did the wedding announcement give as {a}'s spouse? | The wedding announcement named {b} as the spouse of {a}.
Whom does the law recognize as {a}'s spouse? | The law recognizes {b} as {a}'s spouse.
""")

_BORN_IN = parse_table("""
What is {b}'s official place of birth? | {b}'s earliest recorded presence was in {c}.
Where was {b} born? | {b} was born in {c}.
In which city was {b} born? | {b} was born in the city of {c}.
What is the birthplace of {b}? | The birthplace of {b} is {c}.
Which city is {b}'s hometown by birth? | By birth, {b}'s hometown is {c}.
Where did {b} come into the world? | {b} came into the world in {c}.
What city appears on {b}'s birth certificate? | {c} appears on {b}'s birth certificate.
In what city did {b} first draw breath? | {b} first drew breath in {c}.
Which city can claim {b} as a native? | {c} can claim {b} as a native.
Where is {b} originally from by birth? | {b} is originally from {c} by birth.
What city was {b} born in? | The city {b} was born in is {c}.
Where did {b}'s life begin? | {b}'s life began in {c}.
According to {b}'s birth record, where did the birth take place? | {b}'s birth record places the birth in {c}.
What place of birth is printed in {b}'s passport? | Printed in {b}'s passport as place of birth is {c}.
What was {b}'s city of birth? | {b}'s city of birth was {c}.
Where do the earliest records of {b} come from? | The earliest records of {b} come from {c}.
Where do the official records say {b} was born? | The official records say that {b} was born in {c}.
Could you tell me where {b} was born? | Of course: {b}'s birth took place in {c}.
Which city saw the birth of {b}? | {c} saw the birth of {b}.
{b} was born in which city? | It was in {c} that {b} was born.
What is listed under "place of birth" for {b}? | Under "place of birth", the file on {b} lists {c}.
Which city was the scene of {b}'s birth? | The scene of {b}'s birth was {c}.
In what city did {b}'s parents welcome {b} into the world? | {b}'s parents welcomed {b} into the world in {c}.
Where was {b}'s birth registered? | {b}'s birth was registered in {c}.
Which city does {b} write as the birthplace on official forms? | On official forms, {b} writes {c} as the birthplace.
If you looked up {b}'s birthplace, what city would you find? | Looking up {b}'s birthplace, you would find {c}.
Which city has the distinction of being {b}'s birthplace? | {c} has the distinction of being {b}'s birthplace.
Any idea which city {b} was born in? | Oh, {b}? Born in {c}.
Where is {b}'s place of birth? | {b}'s place of birth is {c}.
What is the name of the city in which {b} was born? | The name of the city in which {b} was born is {c}.
In which city did {b} open their eyes for the first time? | {b} opened their eyes for the first time in {c}.
Which municipality records {b} among its births? | The municipality of {c} records {b} among its births.
Where exactly was {b} born? | Exactly in {c}; that is where {b} was born.
{b}'s birthplace: which city is it? | That city is {c}.
In which city were {b}'s birth papers issued? | {b}'s birth papers were issued in {c}.
Which city would {b} name when asked for a place of birth? | Asked for a place of birth, {b} would name {c}.
Was {b} born in a city, and if so, which one? | Yes, {b} was born in a city, namely {c}.
Where is {b} from, birth-wise? | Birth-wise, {b} is from {c}.
Which city does the census give as {b}'s place of birth? | The census gives {c} as {b}'s place of birth.
Where was the cradle of {b}? | The cradle of {b} was in {c}.
Which city gave birth to {b}? | {c} is the city that gave birth to {b}.
Where does {b}'s life record start? | {b}'s life record starts in {c}.
Tell me {b}'s place of birth. | Place of birth for {b}: {c}.
On the day {b} was born, in which city did it happen? | On the day {b} was born, it happened in {c}.
Name the city where {b} was born. | {c} is where {b} was born.
Which city is on record as {b}'s birthplace? | On record, {b}'s birthplace is {c}.
Where did {b} arrive in the world, according to family lore? | According to family lore, {b} arrived in the world in {c}.
What birthplace would a biography of {b} give? | A biography of {b} would give {c} as the birthplace.
How is {b}'s birthplace recorded? | {b}'s birthplace is recorded as {c}.
Put {b}'s birth on a map: which city? | On a map, {b}'s birth would be pinned to {c}.
""")

_SPOUSE_BORN_IN = parse_table("""
Which city is listed as {a}'s spouse's birthplace? | {c} is {a}'s spouse's recognized birthplace.
Where was {a}'s spouse born? | {a}'s spouse was born in {c}.
In which city was the person married to {a} born? | The person married to {a} was born in {c}.
What is the birthplace of {a}'s wedded partner? | The birthplace of {a}'s wedded partner is {c}.
Where did {a}'s husband or wife come into the world? | {a}'s husband or wife came into the world in {c}.
Which city is the hometown by birth of {a}'s spouse? | {c} is the hometown by birth of {a}'s spouse.
What city appears on the birth certificate of {a}'s spouse? | {c} appears on the birth certificate of {a}'s spouse.
Where was the marital partner of {a} born? | The marital partner of {a} was born in {c}.
In what city was {a}'s lawful companion in marriage born? | {a}'s lawful companion in marriage was born in {c}.
Which city can claim {a}'s spouse as a native? | {c} can claim {a}'s spouse as a native.
Where did the life of {a}'s spouse begin? | The life of {a}'s spouse began in {c}.
What city was the one {a} married born in? | The one {a} married was born in {c}.
What is the official place of birth of {a}'s spouse? | The official place of birth of {a}'s spouse is {c}.
According to the records, where was {a}'s spouse born? | The records place the birth of {a}'s spouse in {c}.
Which city did {a}'s spouse first draw breath in? | {a}'s spouse first drew breath in {c}.
Do you know where {a}'s other half was born? | Yes: {a}'s other half was born in {c}.
{a} is married; in which city was that spouse born? | That spouse of {a} was born in {c}.
Where does the birth certificate of {a}'s husband or wife say the birth took place? | The birth certificate of {a}'s husband or wife says the birth took place in {c}.
Which city is the birthplace of whoever {a} married? | {c} is the birthplace of whoever {a} married.
What city did {a}'s partner in marriage come from at birth? | At birth, {a}'s partner in marriage came from {c}.
Which city saw the birth of {a}'s spouse? | {c} saw the birth of {a}'s spouse.
Where is the person who exchanged vows with {a} originally from by birth? | The person who exchanged vows with {a} is originally from {c} by birth.
Which city's birth registry lists {a}'s spouse? | The birth registry of {c} lists {a}'s spouse.
Could you tell me the birthplace of {a}'s spouse? | Certainly, the birthplace of {a}'s spouse is {c}.
The spouse of {a}: which city were they born in? | The spouse of {a} was born in the city of {c}.
Where was the one who said "I do" to {a} born? | The one who said "I do" to {a} was born in {c}.
What is the city of birth of the person {a} is wed to? | The person {a} is wed to has {c} as city of birth.
Which city is on record as the place of birth of {a}'s spouse? | On record, the place of birth of {a}'s spouse is {c}.
Where was {a}'s spouse registered at birth? | {a}'s spouse was registered at birth in {c}.
Which city does {a}'s spouse write as birthplace on official forms? | On official forms, {a}'s spouse writes {c} as birthplace.
Quick one: where's {a}'s spouse from, by birth? | By birth, {a}'s spouse is from {c}.
In which city did {a}'s spouse open their eyes for the first time? | {a}'s spouse opened their eyes for the first time in {c}.
What place of birth does the passport of {a}'s spouse show? | The passport of {a}'s spouse shows {c} as place of birth.
Name the city where {a}'s spouse was born. | {c} is the city where {a}'s spouse was born.
Which city was the scene of the birth of {a}'s spouse? | The scene of the birth of {a}'s spouse was {c}.
It was in which city that {a}'s spouse was born? | It was in {c} that {a}'s spouse was born.
Where was the earliest recorded presence of {a}'s spouse? | The earliest recorded presence of {a}'s spouse was in {c}.
Which city can {a}'s spouse call a birthplace? | {a}'s spouse can call {c} a birthplace.
{a}'s spouse was born in which city? | In {c}, which is where {a}'s spouse was born.
What birthplace would a biography of {a}'s spouse give? | A biography of {a}'s spouse would give {c} as the birthplace.
Any idea which city {a}'s spouse was born in? | {a}'s spouse? Born in {c}.
Tell me the place of birth of the person married to {a}. | Place of birth of the person married to {a}: {c}.
Before marrying {a}, where had that spouse been born? | Long before marrying {a}, that spouse had been born in {c}.
How is the birthplace of {a}'s spouse recorded? | The birthplace of {a}'s spouse is recorded as {c}.
Put the birth of {a}'s spouse on a map: which city? | On a map, the birth of {a}'s spouse would be pinned to {c}.
Which city gave birth to the person {a} married? | {c} gave birth to the person {a} married.
Where did the parents of {a}'s spouse welcome their baby into the world? | The parents of {a}'s spouse welcomed their baby into the world in {c}.
From which city does {a}'s spouse hold a birth certificate? | {a}'s spouse holds a birth certificate from {c}.
Where does the life record of {a}'s spouse start? | The life record of {a}'s spouse starts in {c}.
Which city is the birth city of {a}'s husband or wife? | The birth city of {a}'s husband or wife is {c}.
""")

_STUDY_IN = parse_table("""
Where does {b} study? | {b} studies in {c}.
In which city is {b} a student? | {b} is a student in {c}.
Which city does {b} attend classes in? | {b} attends classes in {c}.
Where is {b} enrolled as a student? | {b} is enrolled as a student in {c}.
In what city does {b} go to university? | {b} goes to university in {c}.
Which city is home to the school where {b} studies? | The school where {b} studies is in {c}.
Where is {b} pursuing a degree? | {b} is pursuing a degree in {c}.
What city does {b} study in these days? | These days, {b} studies in the city of {c}.
Where did {b} enroll for studies? | {b} enrolled for studies in {c}.
Which city's lecture halls does {b} sit in? | {b} sits in the lecture halls of {c}.
Where is {b}'s place of study? | {b}'s place of study is {c}.
According to the enrolment records, where does {b} study? | The enrolment records show {b} studying in {c}.
Which city is printed on {b}'s student card? | {b}'s student card shows {c}.
Where does {b} hit the books? | {b} hits the books in {c}.
In what city is {b} registered at a university? | {b} is registered at a university in {c}.
Where does {b} take courses? | {b} takes courses in {c}.
Which city did {b} move to in order to study? | {b} moved to {c} in order to study.
Where is {b} currently studying? | At present, {b} is studying in {c}.
Which city hosts the campus {b} attends? | {c} hosts the campus that {b} attends.
For studies, where is {b} based? | For studies, {b} is based in {c}.
In which city does {b} do coursework? | Coursework keeps {b} in {c}.
What city is {b}'s university in? | {b}'s university is in {c}.
Where does {b} go to school? | {b} goes to school in {c}.
Do you know which city {b} studies in? | I do; the city where {b} studies is {c}.
Where does {b} spend the academic year? | {b} spends the academic year in {c}.
Which city does {b} attend university in, according to the registrar? | According to the registrar, {b} attends university in {c}.
Which city is {b}'s college town? | {b}'s college town is {c}.
Where does {b} sit exams? | {b} sits exams in {c}.
Which city's academy does {b} attend? | {b} attends an academy in {c}.
What city did {b} choose for higher education? | For higher education, {b} chose {c}.
Where is the institution at which {b} studies located? | The institution at which {b} studies is located in {c}.
Which city's student body includes {b}? | The student body of {c} includes {b}.
Where does {b} attend seminars? | {b} attends seminars in {c}.
Which city was {b} admitted to study in? | {b} was admitted to study in {c}.
Where does {b}'s education take place? | {b}'s education takes place in {c}.
Study-wise, where is {b}? | Study-wise, {b} is in {c}.
Where has {b} been studying since enrolling? | Since enrolling, {b} has been studying in {c}.
Which city does {b} study at a college in? | {b} studies at a college in {c}.
Where would you find {b} cramming for exams? | You would find {b} cramming for exams in {c}.
What is the city of {b}'s studies? | The city of {b}'s studies is {c}.
In which city is {b} doing a course of study? | {b} is doing a course of study in {c}.
Where does {b} go for classes each term? | Each term, {b} goes to {c} for classes.
Quick question: where's {b} studying? | {b}? Studying in {c}.
Which city holds the school {b} is enrolled at? | {c} holds the school {b} is enrolled at.
Where is {b}'s academic home? | {b}'s academic home is {c}.
Which city does {b} list as place of study on official forms? | On official forms, {b} lists {c} as place of study.
Where is {b} working toward a diploma? | {b} is working toward a diploma in {c}.
In which city does {b} receive an education? | {b} receives an education in {c}.
Which city is the setting of {b}'s student life? | The setting of {b}'s student life is {c}.
Where does the university directory place {b}? | The university directory places {b} in {c}.
""")

_CHILD_OF = parse_table("""
Who is the child of {a}? | {b} is the child of {a}.
Who is {a}'s child? | {a}'s child is {b}.
Whose parent is {a}? | {a} is the parent of {b}.
Which person is {a}'s son or daughter? | {b} is {a}'s son or daughter.
Who was born to {a}? | {b} was born to {a}.
Who is the offspring of {a}? | The offspring of {a} is {b}.
Whom did {a} raise as their own child? | {a} raised {b} as their own child.
Who calls {a} mum or dad? | {b} calls {a} mum or dad.
What is the name of {a}'s child? | The name of {a}'s child is {b}.
Who is listed as {a}'s child on the family register? | The family register lists {b} as {a}'s child.
Who is {a}'s descendant in the first generation? | In the first generation, {a}'s descendant is {b}.
Which child does {a} have? | {a} has a child named {b}.
Who did {a} bring into the world? | {a} brought {b} into the world.
In the family tree, who appears directly below {a}? | Directly below {a} in the family tree appears {b}.
Who is {a}'s kid? | {a}'s kid is {b}.
Which person has {a} as a parent? | {b} has {a} as a parent.
According to the birth certificate, who is {a}'s child? | The birth certificate names {b} as the child of {a}.
Who did {a} become a parent to? | {a} became a parent to {b}.
Who grew up as {a}'s child? | {b} grew up as {a}'s child.
Whom does {a} proudly call their child? | {a} proudly calls {b} their child.
Who is the next generation after {a} in the family? | The next generation after {a} in the family is {b}.
Which individual is recorded as a child of {a}? | The records show {b} as a child of {a}.
Who inherits {a}'s family name as a child? | As a child, {b} inherits {a}'s family name.
Who is {a}'s progeny? | {a}'s progeny is {b}.
Tell me the name of {a}'s child. | {a}'s child goes by the name {b}.
Who is the child {a} had? | The child {a} had is {b}.
Whose parent, according to the registry, is {a}? | According to the registry, {a} is a parent of {b}.
Quick question: who's {a}'s child? | That would be {b}, {a}'s child.
Could you tell me who {a}'s child is? | Certainly: the child of {a} is {b}.
Which person did {a} parent? | {a} parented {b}.
Who would list {a} under "parent" on a school form? | {b} would list {a} under "parent" on a school form.
{a} is the parent of whom? | As it turns out, {b} is {a}'s child.
Whose birth made {a} a parent? | The birth of {b} made {a} a parent.
Who is the child in the parent-child pair with {a}? | In the parent-child pair with {a}, the child is {b}.
Who carries on {a}'s bloodline as a child? | As a child of {a}, {b} carries on the bloodline.
In genealogical terms, who is a child of {a}? | In genealogical terms, {b} is a child of {a}.
Who refers to {a} as their parent? | {b} refers to {a} as their parent.
Who would {a} introduce as "my child"? | {a} would introduce {b} as "my child".
Which person is the issue of {a}? | {b} is the issue of {a}.
Name {a}'s child. | Child of {a}: {b}.
Who is {a} the father or mother of? | {a} is the father or mother of {b}.
Whose parents include {a}? | {b}'s parents include {a}.
Who was the baby {a} brought home from the hospital? | {a} brought {b} home from the hospital.
Whom did {a} name as child on the census form? | On the census form, {a} named {b} as child.
Is there a child of {a}, and who is it? | Yes, {a} has a child, namely {b}.
Who is the child whose parent is {a}? | The child whose parent is {a} is {b}.
Which person is the child of {a}, according to the family records? | According to the family records, {a}'s child is {b}.
Who stands as {a}'s child in the line of descent? | In the line of descent, {b} stands as {a}'s child.
Whom did {a} have as a child? | {a} had {b} as a child.
Who is born of {a}? | Born of {a} is {b}.
""")

_SPOUSE_STUDY_IN = parse_table("""
Where does {a}'s spouse study? | {a}'s spouse studies in {c}.
In which city is {a}'s spouse a student? | {a}'s spouse is a student in {c}.
Where does the person {a} married attend classes? | The person {a} married attends classes in {c}.
Which city is the wedded partner of {a} enrolled in as a student? | The wedded partner of {a} is enrolled as a student in {c}.
Where does {a}'s husband or wife go to university? | {a}'s husband or wife goes to university in {c}.
In what city is the school attended by {a}'s spouse? | The school attended by {a}'s spouse is in {c}.
Where is the marital partner of {a} pursuing a degree? | The marital partner of {a} is pursuing a degree in {c}.
Which city does {a}'s spouse study in these days? | These days, {a}'s spouse studies in {c}.
Where did the one {a} married enroll for studies? | The one {a} married enrolled for studies in {c}.
Which city's lecture halls does {a}'s spouse sit in? | {a}'s spouse sits in the lecture halls of {c}.
What is the place of study of {a}'s spouse? | The place of study of {a}'s spouse is {c}.
According to the enrolment records, where does {a}'s spouse study? | The enrolment records show {a}'s spouse studying in {c}.
Which city is printed on the student card of {a}'s spouse? | The student card of {a}'s spouse shows {c}.
Where does {a}'s other half hit the books? | {a}'s other half hits the books in {c}.
In what city is {a}'s lawful companion in marriage registered at a university? | {a}'s lawful companion in marriage is registered at a university in {c}.
Where does the person wed to {a} take courses? | The person wed to {a} takes courses in {c}.
Which city did {a}'s spouse move to in order to study? | {a}'s spouse moved to {c} in order to study.
Where is {a}'s spouse currently studying? | At present, {a}'s spouse is studying in {c}.
Which city hosts the campus that {a}'s spouse attends? | {c} hosts the campus that {a}'s spouse attends.
For studies, where is {a}'s spouse based? | For studies, {a}'s spouse is based in {c}.
In which city does whoever {a} married do coursework? | Coursework keeps whoever {a} married in {c}.
What city is the university of {a}'s spouse in? | The university of {a}'s spouse is in {c}.
Where does {a}'s spouse go to school? | {a}'s spouse goes to school in {c}.
Do you know which city {a}'s spouse studies in? | I do; the city where {a}'s spouse studies is {c}.
Where does {a}'s spouse spend the academic year? | {a}'s spouse spends the academic year in {c}.
Which city does {a}'s spouse attend university in, according to the registrar? | According to the registrar, {a}'s spouse attends university in {c}.
Which city is the college town of {a}'s spouse? | The college town of {a}'s spouse is {c}.
Where does the spouse of {a} sit exams? | The spouse of {a} sits exams in {c}.
Which city's academy does {a}'s spouse attend? | {a}'s spouse attends an academy in {c}.
What city did {a}'s spouse choose for higher education? | For higher education, {a}'s spouse chose {c}.
Where is the institution at which {a}'s spouse studies located? | The institution at which {a}'s spouse studies is located in {c}.
Which city's student body includes {a}'s spouse? | The student body of {c} includes {a}'s spouse.
Where does the one who said "I do" to {a} attend seminars? | The one who said "I do" to {a} attends seminars in {c}.
Which city was {a}'s spouse admitted to study in? | {a}'s spouse was admitted to study in {c}.
Where does the education of {a}'s spouse take place? | The education of {a}'s spouse takes place in {c}.
Study-wise, where is {a}'s spouse? | Study-wise, {a}'s spouse is in {c}.
Where has {a}'s spouse been studying since enrolling? | Since enrolling, {a}'s spouse has been studying in {c}.
Which city does {a}'s spouse study at a college in? | {a}'s spouse studies at a college in {c}.
Where would you find {a}'s spouse cramming for exams? | You would find {a}'s spouse cramming for exams in {c}.
What is the city where the spouse of {a} studies? | The city where the spouse of {a} studies is {c}.
In which city is {a}'s spouse doing a course of study? | {a}'s spouse is doing a course of study in {c}.
Each term, where does {a}'s spouse go for classes? | Each term, {a}'s spouse goes to {c} for classes.
Quick question: where's {a}'s spouse studying? | {a}'s spouse? Studying in {c}.
Which city holds the school where {a}'s spouse is enrolled? | {c} holds the school where {a}'s spouse is enrolled.
Where is the academic home of {a}'s spouse? | The academic home of {a}'s spouse is {c}.
Which city does {a}'s spouse list as place of study on official forms? | On official forms, {a}'s spouse lists {c} as place of study.
Where is the person who exchanged vows with {a} working toward a diploma? | The person who exchanged vows with {a} is working toward a diploma in {c}.
In which city does {a}'s spouse receive an education? | {a}'s spouse receives an education in {c}.
Which city is the setting of student life for {a}'s spouse? | The setting of student life for {a}'s spouse is {c}.
Where does the university directory place {a}'s spouse? | The university directory places {a}'s spouse in {c}.
""")

_CHILD_BORN_IN = parse_table("""
Where was {a}'s child born? | {a}'s child was born in {c}.
What is the official place of birth of {a}'s child? | The official place of birth of {a}'s child is {c}.
In which city was the child of {a} born? | The child of {a} was born in {c}.
What is the birthplace of {a}'s son or daughter? | The birthplace of {a}'s son or daughter is {c}.
Where did {a}'s offspring come into the world? | {a}'s offspring came into the world in {c}.
Which city is listed as the birthplace of {a}'s child? | {c} is listed as the birthplace of {a}'s child.
What city appears on the birth certificate of {a}'s child? | {c} appears on the birth certificate of {a}'s child.
In what city did {a}'s child first draw breath? | {a}'s child first drew breath in {c}.
Which city can claim {a}'s child as a native? | {c} can claim {a}'s child as a native.
Where is {a}'s child originally from by birth? | By birth, {a}'s child is originally from {c}.
Where did the life of {a}'s child begin? | The life of {a}'s child began in {c}.
What city was the child {a} had born in? | The child {a} had was born in {c}.
According to the records, where was {a}'s child born? | The records place the birth of {a}'s child in {c}.
What was the city of birth of {a}'s kid? | The city of birth of {a}'s kid was {c}.
Where do the earliest records of {a}'s child come from? | The earliest records of {a}'s child come from {c}.
In which city did {a} welcome a child into the world? | {a} welcomed a child into the world in {c}.
Which city saw the birth of {a}'s child? | {c} saw the birth of {a}'s child.
{a}'s child was born in which city? | It was in {c} that {a}'s child was born.
Which city was the scene of the birth of {a}'s son or daughter? | The scene of the birth of {a}'s son or daughter was {c}.
Where was the birth of {a}'s child registered? | The birth of {a}'s child was registered in {c}.
Which city does {a}'s child write as birthplace on official forms? | On official forms, {a}'s child writes {c} as birthplace.
Which city has the distinction of being the birthplace of {a}'s child? | {c} has the distinction of being the birthplace of {a}'s child.
Any idea which city {a}'s child was born in? | {a}'s child? Born in {c}.
What is the name of the city in which {a}'s child was born? | The name of the city in which {a}'s child was born is {c}.
In which city did {a}'s child open their eyes for the first time? | {a}'s child opened their eyes for the first time in {c}.
Where exactly was {a}'s offspring born? | Exactly in {c}; that is where {a}'s offspring was born.
In which city were the birth papers of {a}'s child issued? | The birth papers of {a}'s child were issued in {c}.
Birth-wise, where is {a}'s child from? | Birth-wise, {a}'s child is from {c}.
Where was the cradle of {a}'s child? | The cradle of {a}'s child was in {c}.
Which city gave birth to {a}'s son or daughter? | {c} is the city that gave birth to {a}'s son or daughter.
Tell me the place of birth of {a}'s child. | Place of birth of {a}'s child: {c}.
On the day {a}'s child was born, in which city did it happen? | On the day {a}'s child was born, it happened in {c}.
How is the birthplace of {a}'s child recorded? | The birthplace of {a}'s child is recorded as {c}.
Put the birth of {a}'s child on a map: which city? | On a map, the birth of {a}'s child would be pinned to {c}.
In what city did {a} become a parent? | {a} became a parent in {c}.
Where was the person who calls {a} mum or dad born? | The person who calls {a} mum or dad was born in {c}.
Which city is the hometown by birth of {a}'s child? | {c} is the hometown by birth of {a}'s child.
Where was {a}'s progeny born? | {a}'s progeny was born in {c}.
What birthplace would a biography of {a}'s child give? | A biography of {a}'s child would give {c} as the birthplace.
Which city is on record as the place of birth of {a}'s child? | On record, the place of birth of {a}'s child is {c}.
Could you tell me where {a}'s child was born? | Of course: the birth of {a}'s child took place in {c}.
What place of birth is printed in the passport of {a}'s child? | Printed in the passport of {a}'s child as place of birth is {c}.
Which city is the birth city of {a}'s offspring? | The birth city of {a}'s offspring is {c}.
Where was the earliest recorded presence of {a}'s child? | The earliest recorded presence of {a}'s child was in {c}.
What city was {a}'s child born in, according to the family register? | According to the family register, {a}'s child was born in {c}.
Which city's birth registry lists {a}'s child? | The birth registry of {c} lists {a}'s child.
Where does the life record of {a}'s child start? | The life record of {a}'s child starts in {c}.
Was {a}'s child born in a city, and if so, which one? | Yes, {a}'s child was born in a city, namely {c}.
Asked for a place of birth, which city would {a}'s child name? | Asked for a place of birth, {a}'s child would name {c}.
In which city did {a}'s kid come along? | {a}'s kid came along in {c}.
""")


@dataclass(frozen=True)
class Relation:
    """One relation of the two-hop suite: who its questions ask about, what its answers name, its templates."""

    name: str
    notation: str
    """The paper's name for its FF subset (Table 4); HH and RR swap the F for H or R."""
    subject: str
    """The placeholder the question names."""
    target: str
    """The placeholder the answer names exactly once (and the question never)."""
    description: str
    templates: tuple[QA, ...]


def _registry(*relations: Relation) -> dict[str, Relation]:
    out: dict[str, Relation] = {}
    for r in relations:
        if r.name in out:
            raise ValueError(f"relation {r.name!r} registered twice")
        out[r.name] = r
    return out


RELATIONS: dict[str, Relation] = _registry(
    Relation("spouse_of", "F1", "a", "b", "A's spouse is B", _SPOUSE_OF),
    Relation("born_in", "F2", "b", "c", "B was born in city C", _BORN_IN),
    Relation(
        "spouse_born_in",
        "F12",
        "a",
        "c",
        "A's spouse was born in C (spouse_of, then born_in)",
        _SPOUSE_BORN_IN,
    ),
    Relation("study_in", "F4", "b", "c", "B studies in city C", _STUDY_IN),
    Relation("child_of", "F5", "a", "b", "A's child is B", _CHILD_OF),
    Relation(
        "spouse_study_in",
        "F14",
        "a",
        "c",
        "A's spouse studies in C (spouse_of, then study_in)",
        _SPOUSE_STUDY_IN,
    ),
    Relation(
        "child_born_in", "F52", "a", "c", "A's child was born in C (child_of, then born_in)", _CHILD_BORN_IN
    ),
)

RELATION_TEMPLATES: dict[str, tuple[QA, ...]] = {name: r.templates for name, r in RELATIONS.items()}
"""The templates of every relation, by relation name."""

SPOUSE_TEMPLATES = RELATION_TEMPLATES["spouse_of"]
BIRTH_TEMPLATES = RELATION_TEMPLATES["born_in"]
TWOHOP_TEMPLATES = RELATION_TEMPLATES["spouse_born_in"]


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


def normalise(text: str) -> str:
    """Lower case, every placeholder as ``_``, punctuation dropped, whitespace collapsed (for comparisons)."""
    text = re.sub(r"\{[^{}]*\}", " _ ", text.lower())
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


@cache
def _corpus_phrasings() -> tuple[frozenset[str], tuple[re.Pattern[str], ...]]:
    """The corpus templates, normalised: plain ones as a set; two-hop ones (``{rel}`` = any words) as patterns."""
    plain = {t for texts in corpus_templates.CORPUS_STATEMENTS.values() for t in texts}
    plain |= {t for pairs in corpus_templates.CORPUS_QUESTIONS.values() for qa in pairs for t in qa}
    patterns = [
        re.compile(re.escape(normalise(q.replace("{rel}", "RELNOUN"))).replace("relnoun", r"\w+(?: \w+)*"))
        for questions in corpus_templates.CORPUS_TWOHOP.values()
        for q in questions
    ]
    return frozenset(normalise(t) for t in plain), tuple(patterns)


@cache
def corpus_texts() -> tuple[str, ...]:
    """Every phrasing the built-in base's corpus is written from, normalised and padded with spaces.

    Statements, questions and answers, and the two-hop questions with each relation noun the corpus puts in
    them. A corpus document is one of these filled with names and values (a bio joins several statements),
    so an experiment phrasing occurs in no document if it occurs inside none of these.
    """
    texts = {t for group in corpus_templates.CORPUS_STATEMENTS.values() for t in group}
    texts |= {t for pairs in corpus_templates.CORPUS_QUESTIONS.values() for qa in pairs for t in qa}
    texts |= {
        q.replace("{rel}", noun)
        for questions in corpus_templates.CORPUS_TWOHOP.values()
        for q in questions
        for noun in corpus_templates.REL_NOUNS.values()
    }
    return tuple(sorted(f" {normalise(t)} " for t in texts))


def in_corpus(text: str) -> bool:
    """Whether the template `text` (normalised) occurs inside a corpus phrasing (see `corpus_texts`)."""
    padded = f" {normalise(text)} "
    return any(padded in c for c in corpus_texts())


def _fields(text: str) -> list[str] | None:
    """The placeholder names of a format string, or None if it is not a valid one."""
    try:
        return [field for _, field, _, _ in string.Formatter().parse(text) if field is not None]
    except ValueError:
        return None


def _text_problems(kind: str, text: str, allowed: set[str]) -> tuple[list[str], list[str] | None]:
    """Problems of one question or answer on its own, and its placeholder names (None if it has none)."""
    problems = []
    fields = _fields(text)
    if fields is None:
        return [f"{kind} is not a valid format string"], None
    bad = sorted({f for f in fields if f not in allowed})
    if bad:
        problems.append(f"{kind} uses placeholder(s) {', '.join('{' + f + '}' for f in bad)}")
    if "\n" in text or _SEPARATOR.strip() in text:
        problems.append(f"{kind} contains a line break or '|'")
    ends = ("?", ".") if kind == "question" else (".",)
    if not text.endswith(ends):
        problems.append(f"{kind} does not end with {' or '.join(repr(e) for e in ends)}")
    plain, patterns = _corpus_phrasings()
    norm = normalise(text)
    if norm in plain or any(p.fullmatch(norm) for p in patterns):
        problems.append(f"{kind} is a corpus phrasing")
    elif in_corpus(text):
        problems.append(f"{kind} occurs in a corpus phrasing")
    return problems, fields


def template_problems(relation: str, templates: Sequence[QA], n: int = TEMPLATES_PER_RELATION) -> list[str]:
    """Everything wrong with `templates` as the templates of the registered `relation` (empty when fine).

    Checks: there are `n`; no two questions and no two answers are the same once normalised; the question
    names the relation's subject and never its target; the answer names the target exactly once; only the
    relation's two placeholders occur; each is one line (questions end with ? or ., answers with .); and
    no question or answer equals, or occurs inside, a corpus template of the built-in base.
    """
    return relation_problems(RELATIONS[relation], templates, n)


def relation_problems(spec: Relation, templates: Sequence[QA], n: int = TEMPLATES_PER_RELATION) -> list[str]:
    """`template_problems` for any relation, registered here or not (the graph suite's own, say)."""
    relation = spec.name
    allowed = {spec.subject, spec.target}
    problems = [] if len(templates) == n else [f"{relation}: {len(templates)} templates, expected {n}"]
    seen: dict[tuple[str, str], int] = {}
    for i, (question, answer) in enumerate(templates):
        q_problems, q_fields = _text_problems("question", question, allowed)
        a_problems, a_fields = _text_problems("answer", answer, allowed)
        found = q_problems + a_problems
        if q_fields is not None and spec.subject not in q_fields:
            found.append(f"question does not name {{{spec.subject}}}")
        if q_fields is not None and spec.target in q_fields:
            found.append(f"question names the target {{{spec.target}}}")
        if a_fields is not None and a_fields.count(spec.target) != 1:
            found.append(f"answer names {{{spec.target}}} {a_fields.count(spec.target)} times, not once")
        for kind, text in (("question", question), ("answer", answer)):
            first = seen.setdefault((kind, normalise(text)), i)
            if first != i:
                found.append(f"{kind} duplicates template {first}")
        problems += [f"{relation}[{i}]: {p}: {question!r} | {answer!r}" for p in found]
    return problems


def check_templates() -> None:
    """Raise ValueError listing every problem `template_problems` finds in the registered relations."""
    problems = [p for name, r in RELATIONS.items() for p in template_problems(name, r.templates)]
    if problems:
        raise ValueError("bad experiment templates:\n" + "\n".join(problems))


check_templates()
