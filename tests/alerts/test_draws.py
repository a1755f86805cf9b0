"""双随机 draws: the same seed and inputs give the same draw, anyone can make it again from what
it records, every quota is met, positive-list members stay out of on-site draws, inspectors
come two of the enterprise's brigade, and the weights follow the rating (a chi-square test over
many seeds)."""

from __future__ import annotations

import json
from collections import Counter

from alerts.draws import Candidate, DrawRules, SeededStream, draw, draw_json, quota_of, redraw

INSPECTORS = {"B1": ["王一", "李二", "张三", "赵四"], "B2": ["陈五", "周六"]}


def library() -> list[Candidate]:
    out = []
    for i in range(160):
        cls = "key" if i < 40 else "special" if i < 60 else "general"
        color = ("green", "green", "green", "yellow", "red")[i % 5]
        out.append(
            Candidate(
                f"E{i:03d}", cls, color, positive_list=i % 9 == 0, brigade=("B1", "B2")[i % 2]
            )
        )
    return out


def test_the_same_seed_and_inputs_give_the_same_draw_and_it_can_be_made_again():
    rules = DrawRules()
    first = draw(library(), INSPECTORS, rules, "2026Q4-公开种子-8817", "2026Q4")
    again = draw(list(reversed(library())), INSPECTORS, rules, "2026Q4-公开种子-8817", "2026Q4")
    assert again == first  # the library's order does not matter
    other = draw(library(), INSPECTORS, rules, "2026Q4-公开种子-8818", "2026Q4")
    assert {d.enterprise_id for d in other.drawn} != {d.enterprise_id for d in first.drawn}
    recorded = json.loads(json.dumps(draw_json(first, library(), INSPECTORS, rules)))
    assert redraw(recorded) == first


def test_every_quota_is_met_without_positive_list_members():
    d = draw(library(), INSPECTORS, DrawRules(), "seed", "2026Q4")
    assert {k: (q.members, q.quota, q.drawn) for k, q in d.quotas.items()} == {
        "key": (40, 10, 10),  # 25 %
        "special": (20, 5, 5),  # 25 %
        "general": (100, 10, 10),  # 1 in 10
    }
    members = {c.enterprise_id: c for c in library()}
    assert not any(members[x.enterprise_id].positive_list for x in d.drawn)
    for x in d.drawn:
        assert len(set(x.inspectors)) == 2
        assert set(x.inspectors) <= set(INSPECTORS[x.brigade or ""])
    assert d.short == ()
    assert quota_of(0.25, 7) == 2 and quota_of(0.1, 10) == 1 and quota_of(0.25, 0) == 0


def test_a_quota_larger_than_the_eligible_is_named():
    few = [Candidate(f"K{i}", "key", "green", positive_list=i < 3, brigade="B2") for i in range(4)]
    d = draw(few, INSPECTORS, DrawRules(shares={"key": 0.5}), "s", "2026Q4")
    assert d.quotas["key"].drawn == 1  # quota 2, one not on the positive list
    assert d.short == ("key: 1 eligible for a quota of 2",)
    with_members = draw(
        few, INSPECTORS, DrawRules(shares={"key": 0.5}, exclude_positive_list=False), "s", "2026Q4"
    )
    assert with_members.quotas["key"].drawn == 2


def test_a_single_picks_chance_follows_the_ratings_weight():
    # Six candidates, weights 1 1 2 2 4 4 (green, yellow, red); one drawn per seed.
    colors = ["green", "green", "yellow", "yellow", "red", "red"]
    pool = [Candidate(f"G{i}", "general", c) for i, c in enumerate(colors)]
    rules = DrawRules(shares={"general": 0.1})
    seeds = 6000
    counts = Counter(
        draw(pool, {}, rules, f"seed-{n}", "P").drawn[0].enterprise_id for n in range(seeds)
    )
    weights = [rules.weight(c) for c in pool]
    expected = [seeds * w / sum(weights) for w in weights]
    chi2 = sum((counts[c.enterprise_id] - e) ** 2 / e for c, e in zip(pool, expected, strict=True))
    assert chi2 < 20.515, (chi2, counts)  # df 5, p = 0.001
    # ... and not uniform: the red ones are drawn about four times as often as the green.
    assert counts["G4"] + counts["G5"] > 3 * (counts["G0"] + counts["G1"])


def test_the_seeded_stream_is_the_same_everywhere():
    # Pinned: a published draw must come out the same on any machine and any later version,
    # so the generator's numbers for a seed may never change.
    stream = SeededStream("2026Q4/种子")
    assert [stream.uniform() for _ in range(3)] == [
        0.34452988664675843,
        0.23203927516630507,
        0.7352012879937585,
    ]
