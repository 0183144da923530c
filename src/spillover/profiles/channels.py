"""A session's traffic source and its default channel group, as GA4 would name them.

GA4 exports the channel group only for ``session_traffic_source_last_click`` (since mid-2024); for
older exports, and for sources read from event parameters, :func:`default_channel_group` derives it
from source and medium with the main rules of GA4's default channel grouping.
"""

from __future__ import annotations

import ibis

DIRECT_SOURCE = "(direct)"
NO_MEDIUM = "(none)"

_SEARCH_SOURCES = r"(^|\.)(google|bing|yahoo|duckduckgo|baidu|yandex|ecosia|naver|seznam|qwant)(\.|$)"
_SOCIAL_SOURCES = (
    r"(^|\.)(facebook|fb|instagram|ig|linkedin|lnkd|twitter|t\.co|x\.com|pinterest|reddit|tiktok|"
    r"snapchat|threads|whatsapp|social)(\.|$)|social"
)
_VIDEO_SOURCES = r"(^|\.)(youtube|vimeo|twitch|dailymotion)(\.|$)"
_PAID_MEDIUM = r"^(.*cp.*|ppc|retargeting|paid.*)$"
_SOCIAL_MEDIUM = r"^(social|social-network|social-media|sm|social network|social media)$"
_EMAIL = r"^(email|e-mail|e_mail|e mail)$"
_DISPLAY_MEDIUM = r"^(display|banner|expandable|interstitial|cpm)$"

#: Channel groups this module can return.
CHANNEL_GROUPS = (
    "Direct", "Paid Search", "Paid Social", "Paid Video", "Display", "Paid Other", "Organic Social",
    "Organic Video", "Organic Search", "Email", "Affiliates", "Referral", "Unassigned",
)


def default_channel_group(source: ibis.StringValue, medium: ibis.StringValue) -> ibis.StringValue:
    """GA4's default channel group for a source and medium (the common rules; the rest 'Unassigned')."""
    source = source.lower().fill_null("")
    medium = medium.lower().fill_null("")
    search = source.re_search(_SEARCH_SOURCES)
    social = source.re_search(_SOCIAL_SOURCES)
    video = source.re_search(_VIDEO_SOURCES)
    paid = medium.re_search(_PAID_MEDIUM)
    # In GA4's order: the first rule that matches names the channel.
    return ibis.cases(
        ((source == DIRECT_SOURCE) & medium.isin([NO_MEDIUM, "(not set)", ""]), "Direct"),
        (paid & search, "Paid Search"),
        (paid & social, "Paid Social"),
        (paid & video, "Paid Video"),
        (medium.re_search(_DISPLAY_MEDIUM), "Display"),
        (paid, "Paid Other"),
        (social | medium.re_search(_SOCIAL_MEDIUM), "Organic Social"),
        (video | medium.re_search("video"), "Organic Video"),
        (search | (medium == "organic"), "Organic Search"),
        (source.re_search(_EMAIL) | medium.re_search(_EMAIL), "Email"),
        (medium == "affiliate", "Affiliates"),
        (medium.isin(["referral", "app", "link"]), "Referral"),
        else_="Unassigned",
    )
