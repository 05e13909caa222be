"""Alerts: parsing and normalisation (`parse.py`, Chartink's body in `chartink.py`), the strategy
policies (`policy.py`), and the intake (`intake.py`): deduplicate, decide, commit — returning values
(accepted, duplicate, refused) that `service.web` maps to HTTP."""
