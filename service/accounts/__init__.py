"""Accounts: the account and strategy model (`model.py`), the directory of accounts kept from the
account service (`directory.py`) and the broker logins of `CREDENTIALS_FILE` (`credentials.py`)."""
