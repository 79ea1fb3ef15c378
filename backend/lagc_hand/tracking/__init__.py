"""Tracking: stable LEFT/RIGHT identities through a sequence (see :mod:`.tracker`)."""
from lagc_hand.tracking.chirality import chirality_evidence
from lagc_hand.tracking.tracker import HandTrack, TrackerConfig, TrackingResult, track_hands

__all__ = ["chirality_evidence", "HandTrack", "TrackerConfig", "TrackingResult", "track_hands"]
