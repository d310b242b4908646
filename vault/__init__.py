"""The vault. Its version is what a gateway reports with each heartbeat (rotation/gateways.py),
shown on the Gateways page and by `pam gateway list`; change it with each release."""

__version__ = "0.1.0"
