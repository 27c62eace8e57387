"""The 0-100 scores of ContentAnalytics and UserAnalytics, and the daily trend: pure functions.

Each formula is written out in docs/metrics.md; scores are rounded to 2 decimals.
"""

from __future__ import annotations

import math

# Interactions (likes, shares, bookmarks, comments) per view that earn a full engagement score.
FULL_ENGAGEMENT_RATE = 0.25
# Completions per view that earn the completion half of a user's engagement score.
FULL_COMPLETION_RATE = 1.0
# Days since the first event that earn the tenure half of a user's loyalty score.
FULL_TENURE_DAYS = 90


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def _score(value: float) -> float:
    return round(100 * min(1.0, max(0.0, value)), 2)


def popularity(views: int, most_views: int) -> float:
    """100 * ln(1 + views) / ln(1 + most views of any content in the same period)."""
    if views <= 0 or most_views <= 0:
        return 0.0
    return _score(math.log1p(views) / math.log1p(most_views))


def content_engagement(views: int, interactions: int) -> float:
    """100 * min(1, (interactions / views) / 0.25)."""
    return _score(_ratio(interactions, views) / FULL_ENGAGEMENT_RATE)


def content_quality(completion_rate: float, likes: int, bookmarks: int, unique_views: int) -> float:
    """100 * (0.7 * completion rate + 0.3 * min(1, (likes + bookmarks) / unique viewers))."""
    approval = min(1.0, _ratio(likes + bookmarks, unique_views))
    return _score(0.7 * completion_rate + 0.3 * approval)


def user_engagement(views: int, completions: int, interactions: int) -> float:
    """100 * (0.5 * min(1, completions / views) + 0.5 * min(1, (interactions / views) / 0.25)); 0 without views."""
    if views <= 0:
        return 0.0
    finishing = min(1.0, _ratio(completions, views) / FULL_COMPLETION_RATE)
    reacting = min(1.0, _ratio(interactions, views) / FULL_ENGAGEMENT_RATE)
    return _score(0.5 * finishing + 0.5 * reacting)


def user_loyalty(tenure_days: int, sessions: int, return_visits: int) -> float:
    """100 * (0.5 * min(1, tenure days / 90) + 0.5 * return visits / sessions)."""
    return _score(0.5 * min(1.0, tenure_days / FULL_TENURE_DAYS) + 0.5 * _ratio(return_visits, sessions))


def user_activity(active_days: int, period_days: int) -> float:
    """100 * active days / days in the period."""
    return _score(_ratio(active_days, period_days))


def daily_trend(daily_views: list[int]) -> float:
    """Least-squares slope of views per day over the period, as a percentage of the mean day.

    +10 means views grow by a tenth of an average day's views each day; 0 for a single day or no views.
    """
    n = len(daily_views)
    if n < 2:
        return 0.0
    mean_y = sum(daily_views) / n
    if mean_y == 0:
        return 0.0
    mean_x = (n - 1) / 2
    numerator = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(daily_views))
    denominator = sum((x - mean_x) ** 2 for x in range(n))
    return round(100 * (numerator / denominator) / mean_y, 2)
