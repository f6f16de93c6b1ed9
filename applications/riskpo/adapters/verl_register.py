"""Import-time registration for verl >= 0.6: ``VERL_USE_EXTERNAL_MODULES=rands.applications.riskpo.adapters.verl_register``.

Importing this module registers every rands estimator ("riskpo", "rsgrpo", "nsr") with verl's
``register_adv_est`` (names verl already has, "grpo", are left alone). Needs verl installed.
"""
from .verl import register

register(("riskpo", "rsgrpo", "nsr"))
