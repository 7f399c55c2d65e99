"""The free-form readers: numbers (GSM8K-style) and short answers (TriviaQA-style), read from
replies written the way real models write them, and the judges that compare them."""

from __future__ import annotations

import pytest

from cdvkit.tasks.numeric import (
    NumberReading,
    parse_number,
    read_number,
    reference_number,
    same_number,
)
from cdvkit.tasks.short import ShortReading, normalize_answer, read_short, short_matches

JANET = (
    "Janet's ducks lay 16 eggs per day. She eats 3 for breakfast and bakes muffins with 4.\n"
    "So she sells 16 - 3 - 4 = 9 eggs.\n"
    "She sells each egg for $2, so she makes 9 * $2 = $18 every day."
)
GSM8K = "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = $<<9*2=18>>18."
CLAUDE = (
    "1. **Eggs eaten:** 3\n2. **Eggs baked:** 4\n3. **Eggs left:** 16 - 3 - 4 = 9\n"
    "4. **Money:** 9 × $2 = $18\n\nJanet makes **$18** every day at the farmers' market."
)
R1 = "<think>\n16 - 3 - 4 = 9, and 9 * 2 = 18. Wait, is it 20? No, 18.\n</think>\n\n"

# (reply, value, how): every reply gives a number.
NUMERIC = [
    # Answers given in a structure
    ("16 - 3 = 13, and 13 * 2 = 26.\n\n<answer>26</answer>", 26, "marked"),
    ('{"reasoning": "16 - 3 = 13; 13 * 2 = 26", "answer": 26}', 26, "marked"),
    ('{"answer": "$1,080"}', 1080, "marked"),
    # GSM8K's own format, and models fine-tuned on it
    (GSM8K + "\n#### 18", 18, "hashes"),
    ("#### 1,080", 1080, "hashes"),
    ("She earns 1,080 dollars.\n\n#### $1,080", 1080, "hashes"),
    ("#### -12", -12, "hashes"),
    ("#### Step 1: count the eggs\n16 - 3 - 4 = 9\n9 * 2 = 18", 18, "last"),
    # Qwen / DeepSeek-Math / Llama-3: \boxed{}
    (JANET + "\n\nThe final answer is: $\\boxed{18}$", 18, "boxed"),
    ("So the total is \\(\\boxed{18}\\) dollars.", 18, "boxed"),
    ("$$\\boxed{1080}$$", 1080, "boxed"),
    ("Therefore, $x = \\boxed{\\frac{3}{4}}$.", 0.75, "boxed"),
    ("**Final Answer**\n\\[\n\\boxed{\\dfrac{1}{2}}\n\\]", 0.5, "boxed"),
    ("The answer is \\boxed{-\\frac12}.", -0.5, "boxed"),
    ("Thus the answer is $\\boxed{18 \\text{ dollars}}$.", 18, "boxed"),
    ("The area is $\\boxed{12\\text{ cm}^2}$.", 12, "boxed"),
    ("Step 1 gives 5.\nStep 2 gives $\\boxed{7}$ but wait, recheck: \\boxed{8}", 8, "boxed"),
    ("The angle is $\\boxed{45^\\circ}$.", 45, "boxed"),
    ("\\boxed{1{,}080}", 1080, "boxed"),
    ("So, the final answer is $\\boxed{18}$ dollars.", 18, "boxed"),
    # answer markers
    ("The answer is 18.", 18, "marked"),
    ("the answer is: 18", 18, "marked"),
    ("ANSWER: 18", 18, "marked"),
    ("The answer would be 42.", 42, "marked"),
    ("The correct answer is 18.", 18, "marked"),
    ("**The answer is 18.**", 18, "marked"),
    (JANET + "\n\nAnswer: 18", 18, "marked"),
    (JANET + "\n\n**Answer:** $18", 18, "marked"),
    (JANET + "\n\n**Answer: 18**", 18, "marked"),
    (JANET + "\n\n**Final Answer:** Janet makes **$18** every day.", 18, "marked"),
    ("Final Answer: The final answer is $18$. I hope it is correct.", 18, "marked"),
    ("Final answer: **$1,080**", 1080, "marked"),
    ("Therefore, the answer is 18 dollars.", 18, "marked"),
    ("The final answer is 18.00 USD.", 18, "marked"),
    ("The answer is 18. So Janet makes $18 every day at the market.", 18, "marked"),
    ("The answer is 18, which is 3 more than the 15 she made yesterday.", 18, "marked"),
    ("So the final answer is 1,000,000.", 1_000_000, "marked"),
    ("The answer is $1,234.56.", 1234.56, "marked"),
    ("The answer is 45%.", 45, "marked"),
    ("Final answer: 12.5 percent", 12.5, "marked"),
    ("The answer is −5.", -5, "marked"),
    ("Answer: -3 degrees", -3, "marked"),
    ("The answer is .5 liters.", 0.5, "marked"),
    ("Answer: 3/4 of a cup", 0.75, "marked"),
    ("The final answer is 1 1/2 hours.", 1.5, "marked"),
    ("The answer is $\\frac{3}{4}$.", 0.75, "marked"),
    ("The answer is \\( 18 \\).", 18, "marked"),
    ("The answer is eighteen.", 18, "marked"),
    ("Answer (in dollars): 18", 18, "marked"),
    ("The answer to how much she makes per day is $18.", 18, "marked"),
    ("The answer is: 16 - 3 - 4 = 9 eggs, 9 × $2 = $18", 18, "marked"),
    ("### Final Answer\n\n**18**", 18, "marked"),
    ("Answer:\n\n$$18$$", 18, "marked"),
    ("**Answer:**\n\nJanet makes $18 every day.", 18, "marked"),
    ("Answer: Let's think step by step. 16 - 3 - 4 = 9. 9 * 2 = 18. The answer is 18.", 18,
     "marked"),
    ("The answer is 2.5 million.", 2_500_000, "marked"),
    ("The answer is 1.5e3 grams.", 1500, "marked"),
    ("The answer is $1.5 \\times 10^3$.", 1500, "marked"),
    ("The answer is approximately 3.14.", 3.14, "marked"),
    ("The answer is 1 080.", 1080, "marked"),
    ("The answer is 0.5 (or 1/2).", 0.5, "marked"),
    ("The answer is $18, or $18.00.", 18, "marked"),
    ("So the answer is \\$18.", 18, "marked"),
    ("The answer is 18 apples.\n\nLet me know if you want me to explain step 2!", 18, "marked"),
    ("A: 72", 72, "marked"),
    ("The answer is 18\n\nExplanation:\n- 16 - 3 - 4 = 9\n- 9 x 2 = 18", 18, "marked"),
    ("The answer is not 18, it is 20.", 20, "last"),
    # "Answer:" opening the working is no answer: the working's last number is
    ("Answer: Janet has 16 eggs. She eats 3 and bakes with 4, leaving 9. 9 * 2 = 18.", 18, "last"),
    ("A: Janet has 16 eggs per day.\nShe eats 3, bakes 4, so 9 remain.\n9 * $2 = $18", 18, "last"),
    # no marker: the last number, after the intermediate ones
    (JANET, 18, "last"),
    (CLAUDE, 18, "last"),
    ("Janet makes $18 every day at the farmers' market.", 18, "last"),
    ("**Therefore, Janet makes $18 every day.**", 18, "last"),
    ("Step 1: 16 - 3 = 13\nStep 2: 13 - 4 = 9\nStep 3: 9 x $2 = $18\n\nTotal: **$18**", 18, "last"),
    ("48 / 2 = 24 clips in May.\n48 + 24 = 72 clips altogether.", 72, "last"),
    ("The temperature dropped to -7 degrees.", -7, "last"),
    ("She saved 1,080 dollars.\n\nI hope this helps! Let me know if step 2 is unclear.", 1080,
     "last"),
    ("x = 7", 7, "last"),
    ("Each part is 10^6 bytes.", 1_000_000, "last"),
    # reasoning blocks (DeepSeek-R1 and its distillations)
    (R1 + "**Answer:** $18", 18, "marked"),
    ("<think>Maybe 20? No: 16-3-4=9, 9*2=18.</think>\nJanet makes $18 per day.", 18, "last"),
    ("Let me compute 5+6.\n</think>\n\nThe answer is $\\boxed{11}$.", 11, "boxed"),
    ("<think>\nSo the answer is 42.\n</think>\n\n", 42, "marked"),
]  # fmt: skip

# (reply, reason): replies that must read as "cannot decide".
NUMERIC_UNDECIDED = [
    ("", "no answer"),
    (None, "no answer"),
    ("   \n ", "no answer"),
    ("I'm sorry, but I can't help with that.", "no answer"),
    ("I don't know.", "no answer"),
    ("There is not enough information to determine how many eggs she sold.", "no answer"),
    ("We know she has 5 apples but not how many she gave away, so we cannot determine it.",
     "no answer"),
    ("The answer is unknown.", "not a number"),
    ("The answer cannot be determined from the information given.", "not a number"),
    ("Without the price of each egg, the answer cannot be determined.", "not a number"),
    ("The answer is: Not enough information.", "not a number"),
    ("The answer is B.", "not a number"),
    ("\\boxed{\\text{undefined}}", "not a number"),
    ("The answer is 5 or 6.", "ambiguous"),
    ("The final answer is either 12 or 14 depending on the rounding.", "ambiguous"),
    ("The answer is somewhere between 3 and 4.", "ambiguous"),
    ("The answer is 3-4 hours.", "ambiguous"),
    ("It could be either 12 or 14.", "ambiguous"),
    ("So she has 5 apples and 3 oranges left: \\boxed{5 \\text{ and } 3}", "ambiguous"),
    ("#### 5 or 6", "ambiguous"),
    ("<think>\nJanet has 16 eggs. She eats 3, so 13 left. Then 13 - 4 = 9. 9 * 2 =", "no answer"),
    ("<think>The answer is 18", "no answer"),
]  # fmt: skip


@pytest.mark.parametrize(("reply", "value", "how"), NUMERIC)
def test_read_number(reply: str, value: float, how: str) -> None:
    got = read_number(reply)
    assert got.value is not None, got
    assert same_number(got.value, value), got
    assert (got.reason, got.how) == ("", how), got
    # What the reading says was written must be read back as the same number by the judge.
    again = parse_number(got.text)
    assert again is not None and same_number(again, value), got


@pytest.mark.parametrize(("reply", "reason"), NUMERIC_UNDECIDED)
def test_read_number_undecided(reply: str | None, reason: str) -> None:
    got = read_number(reply)
    assert got.value is None, got
    assert got.reason == reason, got


def test_numeric_cases_are_plenty() -> None:
    assert len(NUMERIC) >= 45 and len(NUMERIC_UNDECIDED) >= 8


def test_reading_without_an_answer() -> None:
    assert read_number(None) == NumberReading(None, "", "no answer", "none")
    assert read_number("There is nothing to count here.").how == "none"


def test_marker_beats_later_numbers_and_last_marker_wins() -> None:
    reply = "The answer is 12.\nI made an error.\nThe answer is 14.\nCheck: 2 + 12 = 14"
    assert read_number(reply).value == 14
    assert read_number("The answer is 18.\n\nBreakdown: 16 - 3 - 4 = 9 and 9 * 2.").value == 18
    assert read_number("The answer is 18.\n\nI double-checked: the answer is correct.").value == 18


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("18", 18), ("1,234", 1234), ("1,234,567.5", 1234567.5), ("$18", 18), ("$18.00", 18),
        ("€12", 12), ("£7.50", 7.5), ("¥300", 300), ("US$5", 5), ("18 USD", 18),
        ("18 dollars", 18), ("-$5", -5), ("45%", 45), ("45\\%", 45), ("12 cm", 12),
        ("5 apples", 5), ("3 hours", 3), ("−4", -4), ("+3", 3), (".5", 0.5), ("3.0", 3),
        ("3/4", 0.75), ("1 1/2", 1.5), ("-1 1/2", -1.5), ("½", 0.5), ("\\frac{3}{4}", 0.75),
        ("\\dfrac{3}{4}", 0.75), ("-\\frac12", -0.5), ("2\\frac{1}{2}", 2.5),
        ("$\\frac{1}{2}$", 0.5), ("\\(18\\)", 18), ("\\text{18 apples}", 18),
        ("\\mathrm{18}", 18), ("90^\\circ", 90), ("90°", 90), ("1.5e3", 1500),
        ("1.5 \\times 10^3", 1500), ("1\\,000", 1000), ("x = 5", 5), ("3 \\times 6 = 18", 18),
        ("**18**", 18), ("twenty-five", 25), ("2 million", 2_000_000), ("18 (18.00)", 18),
    ],
)  # fmt: skip
def test_parse_number(text: str, value: float) -> None:
    got = parse_number(text)
    assert got is not None and same_number(got, value), (text, got)


@pytest.mark.parametrize(
    "text",
    ["", "eighteen hundred or so of them", "five or six", "5 or 6", "between 3 and 4", "12-14",
     "3 hours and 30 minutes", "no number here", "unknown", "5/0", "\\frac{x}{2}", "1,2"],
)  # fmt: skip
def test_parse_number_refuses(text: str) -> None:
    assert parse_number(text) is None


def test_same_number() -> None:
    assert same_number(18, 18.0)
    assert same_number(0.1 + 0.2, 0.3)
    assert same_number(1e9, 1e9 + 1)  # relative tolerance
    assert same_number(0.0, 1e-9)  # absolute tolerance near zero
    assert not same_number(18, 18.01)
    assert not same_number(-5, 5)
    assert same_number(1.0, 1.05, rel_tol=0.1)


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nIn all 48+24 = <<48+24=72>>72.\n#### 72",
         72),
        ("Total is 1,000 + 80 = <<1000+80=1080>>1080\n#### 1,080", 1080),
        ("He lost 5 - 8 = <<5-8=-3>>-3 dollars.\n#### -3", -3),
        ("#### 0.5", 0.5), ("72", 72), ("$18", 18), ("0.5", 0.5), ("1/2", 0.5),
        ("So the answer is $\\boxed{\\frac{1}{4}}$.", 0.25),
    ],
)  # fmt: skip
def test_reference_number(answer: str, value: float) -> None:
    got = reference_number(answer)
    assert got is not None and same_number(got, value)


@pytest.mark.parametrize("answer", ["Paris", "", "#### ", "5 or 6"])
def test_reference_number_not_a_number(answer: str) -> None:
    assert reference_number(answer) is None


LEO = "Leonardo da Vinci"
# (reply, text, how): every reply gives an answer.
SHORT = [
    ("The capital sits on the Seine.\n\n<answer>Paris</answer>", "Paris", "marked"),
    ('{"reasoning": "It is on the Seine.", "answer": "Paris"}', "Paris", "marked"),
    ("Paris", "Paris", "whole"),
    ("Paris.", "Paris", "whole"),
    ("paris", "paris", "whole"),
    ("William Shakespeare", "William Shakespeare", "whole"),
    ('"Paris"', "Paris", "whole"),
    ("The capital of France is Paris.", "The capital of France is Paris", "whole"),
    ("I think it's Paris.", "Paris", "whole"),
    ("I believe it was Leonardo da Vinci.", LEO, "whole"),
    ("Paris\n\nParis is the capital and largest city of France.", "Paris", "whole"),
    ("Paris\n\nLet me know if you have other questions!", "Paris", "whole"),
    ("Paris (the capital of France)", "Paris", "whole"),
    ("Answer: Paris", "Paris", "marked"),
    ("ANSWER: PARIS", "PARIS", "marked"),
    ("Final answer: Paris", "Paris", "marked"),
    ("The answer is Paris.", "Paris", "marked"),
    ("The answer is: Paris", "Paris", "marked"),
    ("the final answer is: Neil Armstrong.", "Neil Armstrong", "marked"),
    ("**Answer**: Paris", "Paris", "marked"),
    ("**Answer:** Paris", "Paris", "marked"),
    ("**Answer: Paris**", "Paris", "marked"),
    ("**Final Answer:** Marie Curie", "Marie Curie", "marked"),
    ("Answer: *Paris*", "Paris", "marked"),
    ("Answer - Paris", "Paris", "marked"),
    ("Answer: Paris, because it is the capital of France.", "Paris", "marked"),
    ("Answer: Paris - the capital city of France", "Paris", "marked"),
    ("Answer: Venus — the second planet from the Sun.", "Venus", "marked"),
    ("Answer: Paris\n\nExplanation: Paris has been the capital since 987.", "Paris", "marked"),
    ("The answer is Washington, D.C.", "Washington, D.C.", "marked"),
    ("The answer is J. K. Rowling.", "J. K. Rowling", "marked"),
    ("The answer is St. Louis. It hosted the 1904 Olympics.", "St. Louis", "marked"),
    ("The answer is Sammy Davis Jr.", "Sammy Davis Jr.", "marked"),
    ("The answer is George W. Bush.", "George W. Bush", "marked"),
    ("The answer is Paris, France.", "Paris, France", "marked"),
    ("The correct answer is Paris, the capital of France.", "Paris", "marked"),
    ("The answer is Marie Curie, who won two Nobel Prizes.", "Marie Curie", "marked"),
    ("Answer: The Godfather, directed by Francis Ford Coppola", "The Godfather", "marked"),
    ("The answer is Venus, not Mercury.", "Venus", "marked"),
    ('The correct answer is "Hamlet" by William Shakespeare.', "Hamlet", "marked"),
    ("The answer is *Hamlet*.", "Hamlet", "marked"),
    ("The answer is **Mount Everest**, at 8,849 m.", "Mount Everest", "marked"),
    ("Answer: Mount Everest; it is 8,849 m tall.", "Mount Everest", "marked"),
    ("Answer: Tomb of the Unknown Soldier", "Tomb of the Unknown Soldier", "marked"),
    ("Answer: Apollo 11 (1969)", "Apollo 11", "marked"),
    ("Answer: 1969", "1969", "marked"),
    ("The answer is Pelé.", "Pelé", "marked"),
    ("The answer is the Pacific Ocean.", "the Pacific Ocean", "marked"),
    ("The answer is probably Paris.", "Paris", "marked"),
    ("The answer is simple: Paris.", "Paris", "marked"),
    ('The answer to "What is the capital of France?" is Paris.', "Paris", "marked"),
    ("Q: What is the capital of France?\nA: Paris", "Paris", "marked"),
    ("## Answer\n\nParis", "Paris", "marked"),
    ("**Answer:**\nParis", "Paris", "marked"),
    ("Sure! Here is the answer:\n\nThe Pacific Ocean", "The Pacific Ocean", "marked"),
    ("Final Answer: The final answer is Paris. I hope it is correct.", "Paris", "marked"),
    ("Answer: Let's think step by step. The Eiffel Tower is in Paris. So the answer is Paris.",
     "Paris", "marked"),
    ("I'm not completely certain, but I believe the answer is Canberra, not Sydney.",
     "Canberra", "marked"),
    ("The answer is Jay-Z!", "Jay-Z", "marked"),
    ("\\boxed{Paris}", "Paris", "boxed"),
    ("The final answer is: $\\boxed{\\text{Paris}}$", "Paris", "boxed"),
    ("The capital of France is **Paris**.", "Paris", "bold"),
    ("**Paris**", "Paris", "bold"),
    ("The Eiffel Tower was built for the 1889 World's Fair.\n\nIt stands in **Paris**.",
     "Paris", "bold"),
    ("**Venus**\n\nVenus is the hottest planet in our solar system.", "Venus", "bold"),
    ("<think>Capital of France... Paris.</think>\n\nParis", "Paris", "whole"),
    ("<think>\nThe user asks for the capital.\n</think>\nThe answer is **Paris**.", "Paris",
     "marked"),
    ("</think>\n\nAnswer: Lyon", "Lyon", "marked"),
]  # fmt: skip

SHORT_UNDECIDED = [
    ("", "no answer"),
    (None, "no answer"),
    ("  ", "no answer"),
    ("I don't know.", "refused"),
    ("I'm not sure.", "refused"),
    ("No idea.", "refused"),
    ("Unknown", "refused"),
    ("N/A", "refused"),
    ("Answer: unknown", "refused"),
    ("The answer is unclear.", "refused"),
    ("The answer cannot be determined.", "refused"),
    ("I'm sorry, but I can't help with that request because it needs real-time data.", "refused"),
    ("As an AI, I do not have access to that information, so I cannot answer it.", "refused"),
    ("Answer: Paris or Lyon", "ambiguous"),
    ("The answer is either Paris or Lyon.", "ambiguous"),
    ("\\boxed{\\text{Paris or Lyon}}", "ambiguous"),
    ("The Eiffel Tower is located in the city of Paris, which is the capital and most populous "
     "city of France. It was built for the 1889 World's Fair.", "no answer"),
    ("Great question!\n\nThere are many famous towers in Europe, and each has a history.",
     "no answer"),
    ("1. Mercury\n2. Venus\n3. Earth", "no answer"),
    ("<think>The user asks about France. The capital", "no answer"),
    ("<think>Paris.</think>", "no answer"),
]  # fmt: skip


@pytest.mark.parametrize(("reply", "text", "how"), SHORT)
def test_read_short(reply: str, text: str, how: str) -> None:
    assert read_short(reply) == ShortReading(text, "", how)


@pytest.mark.parametrize(("reply", "reason"), SHORT_UNDECIDED)
def test_read_short_undecided(reply: str | None, reason: str) -> None:
    got = read_short(reply)
    assert got.text is None, got
    assert got.reason == reason, got


def test_short_cases_are_plenty() -> None:
    assert len(SHORT) >= 45 and len(SHORT_UNDECIDED) >= 8


def test_last_marker_wins() -> None:
    reply = "Answer: Lyon\n\nWait, Lyon is not the capital.\n\nFinal answer: Paris"
    assert read_short(reply).text == "Paris"


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("The Beatles", "beatles"), ("  Paris,   France. ", "paris france"), ("“Hamlet”", "hamlet"),
        ("Pelé", "pele"), ("Zürich", "zurich"), ("U.S.", "us"), ("O’Neill", "oneill"),
        ("Jay-Z", "jay z"), ("Simon & Garfunkel", "simon and garfunkel"), ("1,000", "1000"),
        ("An Apple a Day", "apple day"), ("Straße", "strasse"),
    ],
)  # fmt: skip
def test_normalize_answer(text: str, normal: str) -> None:
    assert normalize_answer(text) == normal


@pytest.mark.parametrize(
    ("answer", "aliases"),
    [
        ("Paris", ["Paris"]),
        ("paris.", ["Paris"]),
        ("The Beatles", ["Beatles"]),
        ("Paris, France", ["Paris"]),
        ("It's Paris", ["Lyon", "Paris"]),
        ("The capital of France is Paris", ["Paris"]),
        ("Pele", ["Pelé"]),
        ("Simon and Garfunkel", ["Simon & Garfunkel"]),
        ("William Shakespeare", ["Shakespeare", "Bard of Avon"]),
        ("No Country for Old Men (2007)", ["No Country for Old Men"]),
        ("not in my lifetime", ["Not in My Lifetime"]),  # the negation is the alias's own
    ],
)
def test_short_matches(answer: str, aliases: list[str]) -> None:
    assert short_matches(answer, aliases)


@pytest.mark.parametrize(
    ("answer", "aliases"),
    [
        ("not Paris", ["Paris"]),
        ("It isn't Paris", ["Paris"]),
        ("Definitely never Paris", ["Paris"]),
        ("Lyon", ["Paris"]),
        ("Shakespeare", ["William Shakespeare"]),  # the alias is not inside the answer
        ("Parisian", ["Paris"]),  # whole words only
        ("", ["Paris"]),
        ("Paris", []),
        ("Paris", [""]),
        ("the", ["The"]),  # nothing left after normalisation
        ("Many people think the capital of France is Lyon but it is Paris in fact", ["Paris"]),
    ],
)
def test_short_does_not_match(answer: str, aliases: list[str]) -> None:
    assert not short_matches(answer, aliases)
