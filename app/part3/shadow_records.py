"""What the challengers answered in shadow, kept beside the labelled feedback by each feedback backend
(`FeedbackStore.shadow_records`), so every worker reads the same figures: one record per live request a
challenger answered, under its prediction id's key (the feedback's key), with the champion's version and
answer and the challenger's.

The labels come later, through POST /feedback/: joined on the key, the answers and the feedback give,
for every labelled request both answered, (the champion's answer, the challenger's, the true label).
Bounded: after each batch only the newest `keep` answers of each model remain.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass

from app.part3.shadow_queue import ShadowAnswer


@dataclass(frozen=True)
class Labelled:
    """The labelled requests a challenger and a champion both answered, oldest label first."""

    champion: list[str]
    challenger: list[str]
    labels: list[str]


@dataclass(frozen=True)
class Agreement:
    answered: int  # requests the challenger answered in shadow of this champion (the newest kept)
    agreement: float | None  # the share of them it answered as the champion did


class ShadowRecords(ABC):
    keep: int

    @abstractmethod
    def record(self, answers: list[ShadowAnswer]) -> None:
        """Store a batch of shadow answers (a request answered twice is stored once), then keep only the
        newest `keep` of each model."""

    @abstractmethod
    def labelled(self, model: str, challenger: int, champion: int) -> Labelled:
        """Every labelled request `challenger` answered in shadow of `champion` (the feedback's version too),
        with the champion's answer and the label from the feedback, in the feedback's arrival order."""

    @abstractmethod
    def agreement(self, model: str, challenger: int, champion: int) -> Agreement: ...

    @abstractmethod
    def count(self, model: str) -> int: ...
