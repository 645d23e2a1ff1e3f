"""Sector and institution vocabularies shared by the scenario loader and the model parts."""

FIRM_SECTORS: tuple[str, ...] = ("manufacturing", "wholesale_logistics", "high_end", "other_services")
"""Firm sectors. For wholesale_logistics one firm is a wholesale market or logistics centre, as the report counts."""

JOB_SECTORS: tuple[str, ...] = (*FIRM_SECTORS, "public")
"""Sectors of the jobs output: firm sectors plus public institutions' staff."""

INSTITUTION_KINDS: tuple[str, ...] = ("school", "hospital", "university", "department", "soe_hq")
"""Public institutions: municipal schools and hospitals, universities, municipal departments, central SOE HQs."""
