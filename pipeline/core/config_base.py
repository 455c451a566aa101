"""The base of every settings class (values only, unknown keys refused, frozen), and the
value types several settings modules share."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _comma_list(value: Any) -> Any:
    # `--classes person,car` and `classes: person,car` are the list [person, car]
    return [name.strip() for name in value.split(",") if name.strip()] if isinstance(value, str) else value


# A score threshold, and class names with their own threshold. Class names are checked
# against the model's once it has loaded (engines/outputs.py Selection.for_model).
Score = Annotated[float, Field(ge=0, le=1)]
ClassNames = Annotated[tuple[str, ...], BeforeValidator(_comma_list), Field(min_length=1)]
ClassScores = dict[str, Score]
