"""Properties of the pure aggregation functions behind votes, swap and generator rewards."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from unireward.rewards.group import group_win_rates, majority_share, unswap

votes = st.lists(st.sampled_from([1, 2, None]), max_size=12)


@given(votes)
def test_majority_vote_agrees_with_its_share(vs: list[int | None]) -> None:
    winner, share = majority_share(vs)
    if share is None:
        assert winner is None and not any(v in (1, 2) for v in vs)
    else:
        assert 0.0 <= share <= 1.0
        assert winner == (1 if share > 0.5 else 2 if share < 0.5 else None)


@given(votes)
def test_swapping_every_vote_mirrors_the_verdict(vs: list[int | None]) -> None:
    winner, share = majority_share(vs)
    w2, s2 = majority_share([unswap(v) for v in vs])
    assert w2 == unswap(winner)
    assert (share is None and s2 is None) or abs(share + s2 - 1.0) < 1e-9


@st.composite
def groups(draw: st.DrawFn) -> tuple[int, dict[tuple[int, int], float | None]]:
    n = draw(st.integers(1, 6))
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True)) if pairs else []
    return n, {p: draw(st.sampled_from([0.0, 0.5, 1.0, None, 0.25])) for p in chosen}


@given(groups())
def test_win_rates_are_a_zero_sum_tournament(group: tuple[int, dict[tuple[int, int], float | None]]) -> None:
    n, outcomes = group
    rates = group_win_rates(n, outcomes)
    assert len(rates) == n and all(0.0 <= r <= 1.0 for r in rates)
    assert abs(sum(rates) - n / 2) < 1e-9  # every comparison hands out exactly one point


def test_a_candidate_that_wins_everything_gets_one() -> None:
    outcomes = {(0, j): 1.0 for j in range(1, 4)} | {(j, 0): 0.0 for j in range(1, 4)}
    assert group_win_rates(4, outcomes)[0] == 1.0
