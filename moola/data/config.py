"""How to read and split the data (``DataConfig``): its own module, with pydantic only, so the
orchestrator's processes that pass a DataConfig along (the flows, the worker) load no pandas."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from moola.core.errors import config_error


class DataConfig(BaseModel):
    """How to read and split the data. Defaults reproduce the seed's 78/20 split of 98 rows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    val_size: int | float = Field(0.2, gt=0, allow_inf_nan=False, description="validation windows: a count or a fraction")
    folds: int = Field(1, ge=1, description="expanding-window folds; the last is the default split")
    bar_seconds: int = Field(60, gt=0, le=10**9, description="seconds per bar; a window spans T bars")
    channels: list[str] | None = Field(None, description="channel names; 4 channels mean OHLC")
    assume_row_order: bool = Field(False, description="no timestamps: trust row order as time")
    min_train: int = Field(10, ge=2, description="fewest train windows left after purging")
    min_train_per_class: int = Field(2, ge=1, description="fewest train windows of each val class")


DEFAULT_DATA = DataConfig()  # the one owner of val_size, folds and bar_seconds defaults


def load_data_config(flags: bool = False, **values) -> DataConfig:
    """A DataConfig from parameters or options; ConfigError naming each bad one (as ``--val-size``
    with ``flags``), never pydantic's traceback."""
    from pydantic import ValidationError

    try:
        return DataConfig(**values)
    except ValidationError as exc:
        raise config_error(exc, flags=flags) from exc
