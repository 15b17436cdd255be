"""Tests of the detectors package: every detector, the check suite, fusion, snapshots."""
