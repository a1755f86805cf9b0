"""rules/firing.py: the two meanings of fire and clear."""

import pickle

from rules.firing import Episode, Level


def test_level_fires_every_window_and_clears_once():
    level: Level[str, str] = Level()
    judged = [level.judge("A3", c) for c in (None, "warning", "alarm", None, None)]
    assert judged == [None, ("fire", "warning"), ("fire", "alarm"), ("clear", "alarm"), None]
    assert "A3" not in level


def test_level_remembers_what_held_for_the_clear():
    level: Level[str, int] = Level()
    day = 100
    for d in (day, day + 1):  # C7: the held value is the first day of the run
        assert level.judge("m", level.get("m", d)) == ("fire", day)
    assert level.judge("m", None) == ("clear", day)


def test_episode_fires_once_and_clears_once():
    episode: Episode[str] = Episode()
    judged = [episode.judge("C1", holds, t) for t, holds in enumerate((True, True, False, False))]
    assert judged == [("fire", 0), None, ("clear", 0), None]
    assert episode.begin("B8", 5)
    assert not episode.begin("B8", 6)
    assert episode.end("B8") == 5
    assert episode.end("B8") is None


def test_retain_forgets_sources_no_longer_judged_and_state_pickles():
    level: Level[str, bool] = Level()
    episode: Episode[str] = Episode()
    for key in ("kept", "gone"):
        level.judge(key, True)
        episode.begin(key, 1)
    level.retain({"kept"})
    episode.retain({"kept"})
    level, episode = pickle.loads(pickle.dumps((level, episode)))
    assert ("kept" in level, "gone" in level) == (True, False)
    assert ("kept" in episode, "gone" in episode) == (True, False)
