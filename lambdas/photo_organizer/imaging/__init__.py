"""Image ingest core: sniff the real format, check the pixel count, decode once, make the derivatives."""

from photo_organizer.imaging.derive import DerivativeSpec, DerivedImage, derive
from photo_organizer.imaging.phash import hamming_distance, phash
from photo_organizer.imaging.sniff import sniff_format

__all__ = ["DerivativeSpec", "DerivedImage", "derive", "hamming_distance", "phash", "sniff_format"]
