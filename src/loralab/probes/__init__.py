"""Probes that measure a base model itself (not an expert): familiarity with the entity pools."""
