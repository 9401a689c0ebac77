"""The fixed words of the register and of pilots, in a module that imports nothing.

The CLI offers them as choices when its commands are declared; keeping them apart from
the models spares every command (even --help) the cost of loading SQLAlchemy's mappings.
"""

SIDES = ("citizen", "professional", "shared")
MODES = ("commissioning", "design", "delivery", "assessment")
TREATMENTS = ("treat", "tolerate", "transfer", "terminate", "test")
RISK_STATUSES = ("open", "closed")
CONTROL_STATUSES = ("planned", "in-place")
REVIEW_OUTCOMES = ("confirmed", "rescored", "escalated", "closed")
PILOT_STATUSES = ("active", "stopped", "completed")
DECISIONS = ("proceed", "continue", "stop", "adapt")
RESOURCE_SIDES = ("public", "citizen")
# the assurance framework's words (NHS board assurance framework / Orange Book); stored as written
CONTROL_EFFECTIVENESS = ("effective", "partially effective", "ineffective", "not assessed")
ASSURANCE_LINES = ("first", "second", "third")  # management, oversight functions, independent
ACTION_STATUSES = ("open", "done", "cancelled")
