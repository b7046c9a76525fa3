"""The line every ``ra.toml`` a test writes needs: the RA's certificate profile.

``ra.profile_files`` is required (the RA checks applications against its own copy of the CA's
profiles); the tests point it at the repository's ``conf/profiles/office.toml``.
"""

from __future__ import annotations

import json
from pathlib import Path

OFFICE_PROFILE = Path(__file__).resolve().parents[1] / "conf" / "profiles" / "office.toml"
# A JSON string is a valid TOML basic string.
PROFILE_FILES = f"profile_files = [{json.dumps(str(OFFICE_PROFILE))}]"
