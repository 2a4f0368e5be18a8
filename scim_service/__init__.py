"""scim-service: a SCIM 2.0 service provider as a Flask microservice with pluggable storage."""

__version__ = "0.1.0"
