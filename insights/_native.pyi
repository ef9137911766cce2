from collections.abc import Callable, Sequence
from typing import Any

ABI: int
SHAPE: tuple[tuple[int, ...], int]
RETIRE_EVERY: int

def set_model(
    prior_count: float,
    prior_minutes: float,
    slot_prior_minutes: float,
    max_phi: float,
    winsor_sigma: float,
    suspect_score: float,
    suspect_weight: float,
    poisson_phi: float,
) -> None: ...
def scan(
    events: list[Any],
    streams: dict[Any, Any],
    jump: int,
    lateness: int,
    accept: Callable[..., object],
    due: dict[Any, Any],
    slow: Callable[..., object],
    dedupe: object,
    routes: dict[Any, Any],
    horizon: int,
) -> tuple[int, int, int, int]: ...
def merge_minute(
    ids: object,
    weights: object,
    rows: Sequence[int],
    ranks: Sequence[Sequence[int]],
    weighted: Sequence[float],
    value_ids: Sequence[int] | None,
) -> None: ...
def merge_buffers(
    ids: object,
    weights: object,
    buffers: Sequence[Any],
    row_weights: dict[int, float],
    intern: Callable[[str], int],
) -> None: ...
def tail_scores(
    x: object,
    lam: object,
    phi: object,
    where: object,
    out: object,
    work: object,
) -> None: ...
def set_loops(
    exp2: Callable[..., object],
    gammainc: Callable[..., object],
    betainc: Callable[..., object],
    log10: Callable[..., object],
) -> bool: ...
def score_minutes(
    table: object,
    rows: object,
    counts: object,
    item: object,
    exposures: Sequence[Any],
    minutes: Sequence[int],
    min_excess: float,
    scratch: object,
    planes: object,
    needed: object,
) -> None: ...
def learn_minutes(
    table: object,
    rows: object,
    counts: object,
    scores: object,
    guarded: object,
    minute: object,
    planes: object,
) -> None: ...
def next_batch(
    due: dict[Any, Any],
    ahead: dict[Any, list[int]],
    gap_piece: int,
    rescale_exponent: float,
    rebase: Callable[[Any, int], None],
) -> list[Any]: ...
def close_step(
    batch: list[Any],
    table: object,
    ids: object,
    weights: object,
    intern: Callable[[str], int],
    min_excess: float,
    start_score: float,
    sparse: float,
    rescale_exponent: float,
    lookback: int,
    tools: tuple[Any, ...],
) -> bool | tuple[Any, ...] | None: ...
def strict_seconds(text: object) -> int: ...
