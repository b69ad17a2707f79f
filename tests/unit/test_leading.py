"""The moves in and out of the lead (leading.py), without a router: the
sequencer that serves, the writer and the lease keeper are stand-ins that
record what they are told."""

from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer
from twisted.trial import unittest

from buildbot_mq_ordered.router.journal.lease import Deposed
from buildbot_mq_ordered.router.journal.terms import TermHistory
from buildbot_mq_ordered.router.leading import Leadership
from tests.support.sequencer import Keeper
from tests.support.sequencer import RecordingLog


class Owner:
    """The sequencer's side: serving answers at once, or when the test says
    (``hold``), or is refused (``refuse``)."""

    def __init__(self):
        self.did = []
        self.refuse = False
        self.held = None

    def serve(self, still_leads):
        self.did.append('serve')
        if self.refuse:
            return defer.fail(ApplicationError('wamp.error.procedure_already_exists', 'taken'))
        if self.held is not None:
            return self.held.addCallback(lambda _: still_leads())
        return defer.succeed(still_leads())

    def unserve(self):
        self.did.append('unserve')

    def leave(self):
        self.did.append('leave')


class Writer:
    def __init__(self):
        self.reloads = []
        self.failures = []

    def reload(self):
        d = defer.Deferred()
        self.reloads.append(d)
        return d

    def fail(self, failure):
        self.failures.append(failure)


class Journal(TermHistory):
    """The journal's lease and term, as the leadership sets them."""
    name = 'sequencer.sqlite'
    last_pos = 4


class LeadershipTest(unittest.TestCase):

    def setUp(self):
        self.journal = Journal()
        self.owner = Owner()
        self.writer = Writer()
        self.said = []
        self.leadership = Leadership(self.journal, self.writer, self.owner,
                                     RecordingLog(self.said), 'buildbot')

    def shared(self, term):
        """As if its lease keeper (a PostgreSQL journal) had taken term."""
        self.leadership.keeper = keeper = Keeper(term)
        return keeper

    def lines(self):
        return [(level, text.format(**kw)) for level, text, kw in self.said]


class OnItsOwn(LeadershipTest):
    """A journal of its own (SQLite): term 1 for good."""

    def test_it_leads_term_1_at_once(self):
        self.leadership.start()
        self.assertEqual(self.owner.did, ['serve'])
        self.assertEqual(self.leadership.role(),
                         {'leader': True, 'term': 1, 'leader_alive': True})
        self.assertEqual(self.lines(), [('info', "sequencer ready on realm buildbot: journal "
                                                 "sequencer.sqlite, next position 5")])

    def test_refused_procedures_make_it_leave(self):
        self.owner.refuse = True
        self.leadership.start()
        self.assertEqual(self.owner.did, ['serve', 'leave'])
        self.assertEqual([level for level, _ in self.lines()], ['error'])
        self.assertIn('is another sequencer running?', self.lines()[0][1])


class Shared(LeadershipTest):
    """A shared journal (PostgreSQL): the lease keeper says when."""

    def test_taking_the_lead_reads_the_journal_again_then_serves(self):
        self.shared(7)
        self.journal.term_id = 12345        # the term of an earlier lease
        self.leadership.lead(7)
        self.assertEqual(self.journal.term, 7)     # its writes are fenced by it
        self.assertIsNone(self.journal.term_id)
        self.assertTrue(self.journal.term_ends(0))  # the reload begins a new term
        self.assertEqual(self.owner.did, [])       # not before the journal was read
        self.writer.reloads[0].callback(None)
        self.assertEqual(self.owner.did, ['serve'])
        self.assertEqual((self.leadership.leading, self.leadership.term), (True, 7))
        self.assertEqual(self.lines(), [('info', "sequencer leads realm buildbot with term 7: "
                                                 "journal sequencer.sqlite, next position 5")])

    def test_a_journal_that_cannot_be_read_gives_the_lead_up(self):
        keeper = self.shared(7)
        self.leadership.lead(7)
        self.writer.reloads[0].errback(OSError("server away"))
        self.assertEqual(keeper.lost, ["it cannot read the journal (server away)"])
        self.assertEqual(self.owner.did, [])

    def test_a_lease_lost_while_reading_serves_nothing(self):
        keeper = self.shared(7)
        self.leadership.lead(7)
        keeper.lease.term = None
        self.writer.reloads[0].callback(None)
        self.assertEqual(self.owner.did, [])
        self.assertFalse(self.leadership.leading)

    def test_refused_procedures_give_the_lead_up(self):
        keeper = self.shared(7)
        self.owner.refuse = True
        self.leadership.lead(7)
        self.writer.reloads[0].callback(None)
        self.assertEqual(keeper.lost, ["it cannot register the sequencer's procedures"])
        self.assertEqual(self.owner.did, ['serve'])

    def test_stepping_down_stops_at_once(self):
        self.shared(7)
        self.leadership.lead(7)
        self.writer.reloads[0].callback(None)
        self.leadership.step_down(7, "its lease was not renewed in time")
        self.assertFalse(self.leadership.leading)
        self.assertEqual((self.journal.term, self.journal.term_ends(0)), (None, False))
        self.assertEqual(self.owner.did, ['serve', 'unserve'])
        [failure] = self.writer.failures
        self.assertIsInstance(failure.value, Deposed)
        self.assertEqual(self.lines()[-1],
                         ('warn', "sequencer: no longer leads realm buildbot (term 7): its "
                                  "lease was not renewed in time; a candidate again"))
        self.assertEqual(self.leadership.role(),
                         {'leader': False, 'term': 7, 'leader_alive': True})

    def test_a_lead_lost_while_registering_is_not_served(self):
        self.shared(7)
        self.owner.held = defer.Deferred()
        self.leadership.lead(7)
        self.writer.reloads[0].callback(None)
        self.leadership.step_down(7, "another router took its lease over")
        self.owner.held.callback(None)    # the registrations answer: too late
        self.assertEqual([level for level, _ in self.lines()], ['warn'])
