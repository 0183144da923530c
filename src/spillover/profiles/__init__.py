"""Customer profiles: back-stitched sessions, gateway-product adoptions and one 360° row per customer."""

from spillover.profiles.build import ADOPTIONS, PROFILES, SESSIONS, build_profiles

__all__ = ["ADOPTIONS", "PROFILES", "SESSIONS", "build_profiles"]
