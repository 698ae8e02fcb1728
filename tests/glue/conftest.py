"""Makes glue_jobs/<job>/ importable as a top-level package (`import analyze_photos.transforms`), the way Glue
sees a job's own modules; glue_jobs itself stays a plain folder, never a package that could shadow another."""

import sys
from pathlib import Path

GLUE_JOBS = Path(__file__).resolve().parents[2] / "glue_jobs"
if str(GLUE_JOBS) not in sys.path:
    sys.path.insert(0, str(GLUE_JOBS))
