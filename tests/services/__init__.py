"""Tests of the domain services, one module per service."""
