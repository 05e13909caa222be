"""The full fault run (`make faults`): crash campaign, missed-stop sweep, hostile input at volume.

Run with `python -m tests.faults.full`; no module here is named `test_*`, so pytest never collects it.
"""
