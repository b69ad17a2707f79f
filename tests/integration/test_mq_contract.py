"""Buildbot's MQ contract over a real Crossbar router (tests/support/contract.py)."""

from twisted.trial import unittest

from tests.support.contract import ContractTests


class Contract(ContractTests, unittest.TestCase):
    """The contract over ws://, on the shared router."""
