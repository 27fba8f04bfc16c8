"""What a model kit declares about its explanations (:meth:`kindml.model.kit.ModelKit.explanation`), and the bundle's file names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kindml.errors import KindmlError

if TYPE_CHECKING:
    import pandas as pd

BACKGROUND_FILE = "explain_background.parquet"
"""The background sample stored with a model version (training rows, only the explained columns)."""
IMPORTANCE_FILE = "importance.json"
"""The global importance stored with a model version."""


class ExplanationError(KindmlError):
    """An explanation cannot be computed (the kit declares none, a column is missing, a file is unreadable)."""

    default_hint = "See docs/explanations.md: a kit declares its explained columns in explanation()."


@dataclass
class ExplainSpec:
    """The raw columns attributions are about, and the evaluation budgets.

    A *player* of the Shapley game is one entry of :attr:`columns` or one named group of
    :attr:`groups`. Per request, tabular kits attribute the score to the players (absent players
    take background values); text kits attribute it to the words of :attr:`text`. The global
    importance uses the players plus, for text kits, the whole text as one more player.
    """

    columns: list[str] = field(default_factory=list)
    """Raw columns (request fields, looked-up features) explained one by one."""
    groups: dict[str, list[str]] = field(default_factory=dict)
    """Player name → columns explained together (e.g. a feature view's features)."""
    text: str | None = None
    """A free-text column: per-request attributions are over its words."""
    mask_token: str = ""
    """What replaces an absent word ("" drops it; a BERT kit may use ``[MASK]``)."""
    derived: dict[str, Callable[[pd.DataFrame], Any]] = field(default_factory=dict)
    """Columns a request carries that training rows do not have, computed from a training frame (e.g. ``hour``)."""
    max_words: int = 32
    """A longer text is split into at most this many contiguous spans of words (the players)."""
    samples: int = 10
    """Orders (permutations, in antithetic pairs) per explained request row: ``samples × players + 3`` coalitions."""
    background_rows: int = 100
    """Rows of the stored background sample."""
    request_background: int = 100
    """Background rows each coalition is averaged over per request (≤ background_rows)."""
    importance_rows: int = 200
    """Holdout rows the global importance averages over."""
    importance_background: int = 50
    """Background rows per coalition for the global importance."""
    importance_samples: int = 1
    """Permutations per row for the global importance."""

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for name, cols in [(c, [c]) for c in self.columns] + list(self.groups.items()):
            if not cols:
                raise ExplanationError(f"explanation group {name!r} has no columns")
            if name in seen or seen & set(cols) - {name}:
                raise ExplanationError(f"explanation player {name!r} repeats a column or a name: {cols}",
                                       "Each column belongs to one player (a column, or one group).")
            seen |= {name, *cols}
        if self.text is not None and self.text in seen:
            raise ExplanationError(f"the text column {self.text!r} is also a tabular player")
        for key in ("samples", "background_rows", "request_background", "importance_rows", "importance_background",
                    "importance_samples", "max_words"):
            if int(getattr(self, key)) < 1:
                raise ExplanationError(f"explanation budget {key} must be at least 1, got {getattr(self, key)}")

    def players(self, with_text: bool = False) -> list[tuple[str, list[str]]]:
        """(name, columns) of each tabular player, and the whole text as one player when ``with_text``."""
        out = [(c, [c]) for c in self.columns] + [(name, list(cols)) for name, cols in self.groups.items()]
        if with_text and self.text is not None:
            out.insert(0, (self.text, [self.text]))
        return out

    @property
    def needed(self) -> list[str]:
        """Every column the explanation reads (stored in the background sample)."""
        cols = [c for _, cs in self.players() for c in cs]
        return [self.text, *cols] if self.text is not None else cols

    def rows(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Training rows as the explained columns (derived ones computed), in :attr:`needed` order."""
        import pandas as pd

        out = {}
        for c in self.needed:
            if c in frame.columns:
                out[c] = frame[c].to_numpy()
            elif c in self.derived:
                out[c] = self.derived[c](frame)
            else:
                raise ExplanationError(f"the explained column {c!r} is not in the training rows ({', '.join(map(str, frame.columns[:12]))} ...)",
                                       "Name request fields and features as the training frame does, or derive the column (ExplainSpec.derived).")
        return pd.DataFrame(out, index=range(len(frame)))
