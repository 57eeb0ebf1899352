"""Instructor solutions, one module per kata, and each kata's catalogue.

`reference/<kata>.py` has exactly the API of `katas/<kata>.py`.
`reference/<kata>_catalogue.py` lists MISTAKES (common wrong implementations, each of
which the kata's grader must fail and name) and VARIANTS (correct alternatives, each of
which the grader must accept with full marks).
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Entry:
    """One catalogued implementation: the reference API with some names replaced.

    `says` completes the sentence "Looks like a common mistake: ..." for a mistake,
    or describes the approach for a variant.
    """

    name: str
    says: str
    overrides: dict = field(default_factory=dict)


def mistake(name: str, says: str, **overrides) -> Entry:
    return Entry(name, says, overrides)


def variant(name: str, says: str, **overrides) -> Entry:
    return Entry(name, says, overrides)
