"""A leader's fault under load, measured: two routers on one journal, three
masters producing (``faultload``), both routers' roles watched
(``rolewatch``); then what the masters delivered, what the journal holds
and what the routers logged, as figures and as the promises of issue 21."""

from twisted.internet import defer

from tests.support import routerlog
from tests.support.faultload import MastersUnderFault
from tests.support.figures import report
from tests.support.ha import FIRST_SEQUENCED_BOUND
from tests.support.ha import LEADS_BOUND
from tests.support.ha import RouterSet
from tests.support.ha import during_a_commit
from tests.support.ha import journal_gaps
from tests.support.ha import journaled_twice
from tests.support.ha import written_at
from tests.support.promises import Promises
from tests.support.rolewatch import RoleWatch


def since(t, t0):
    return None if t is None or t0 is None else round(t - t0, 2)


def two_leaders(leader, standby, fault):
    """When the deposed leader still said it led, after the standby had
    said so (seconds since the fault: [it asked, the standby answered]), or
    None: both roles' own answers, not the polls' order."""
    proof = leader.leading_after(standby, fault)
    return None if proof is None else [since(t, fault) for t in proof]


class LeaderFault(RouterSet):
    """A TestCase mixin: one fault of the leader under load, its figures
    reported and its promises checked."""

    @defer.inlineCallbacks
    def fault_under_load(self, url, routers, leader, steps, per_master, rate):
        """Run the masters through ``steps`` (``MastersUnderFault.run``; one is
        named 'fault'); returns (figures, promises) for the test's own
        figures and checks before ``conclude``."""
        standby = next(r for r in routers if r is not leader)
        watches = {r: RoleWatch(r) for r in routers}
        run = MastersUnderFault(self, routers, per_master, rate)
        try:
            yield run.run(start_after=2 * len(run.nodes) * rate, steps=steps)
        finally:
            for w in watches.values():
                yield w.stop()
        fault = run.at.get('fault')
        verdict = run.verdict()
        figures = dict(
            run.figures(verdict),
            takeover_s=since(watches[standby].first(True, fault), fault),
            first_sequenced_s=since(self.first_sequenced(url, standby), fault),
            leader_left_s=since(watches[leader].first(False, fault), fault),
            two_leaders=two_leaders(watches[leader], watches[standby], fault),
            numbered_twice=routerlog.numbered_twice(routers),
            journaled_twice=journaled_twice(url),
            steps={k: since(t, fault) for k, t in run.at.items()},
            terms={'leader': routerlog.terms(leader), 'standby': routerlog.terms(standby)},
            tracebacks={'leader': len(routerlog.tracebacks(leader)),
                        'standby': len(routerlog.tracebacks(standby))})
        promises = Promises()
        self.check_delivery(promises, run, verdict, figures)
        promises.within("fault -> the standby leads", figures['takeover_s'], LEADS_BOUND)
        promises.within("fault -> first message sequenced by the new leader",
                        figures['first_sequenced_s'], FIRST_SEQUENCED_BOUND)
        self.check_journal(promises, url, routers, figures)
        return figures, promises

    def conclude(self, name, figures, promises, routers):
        """Print the figures (one JSON line), keep the logs, then fail if a
        promise broke."""
        report(name, **figures)
        for i, r in enumerate(routers):
            routerlog.keep(r, f'{name}-router{i}')
        promises.assert_kept(self)

    @defer.inlineCallbacks
    def stall_under_load(self, url, routers, leader, stall, seconds, per_master, rate):
        """The leader stalled during a commit (``stall``: (begin, end), each
        a callable) for ``seconds`` under load: ``fault_under_load`` with
        steps 'fault' and 'end', and at the end one router leads, not the
        stalled one (the standby renews what it took)."""
        begin, end = stall
        caught = []
        figures, promises = yield self.fault_under_load(
            url, routers, leader,
            [(0, 'fault', lambda: caught.append(during_a_commit(begin, end, url))),
             (seconds, 'end', end)],
            per_master, rate)
        figures['during_a_commit'] = caught[0] if caught else None
        try:
            now, _ = yield self.leader_of(routers)
        except AssertionError as e:
            promises.check(False, f"at the end: {e}")
        else:
            promises.check(now is not leader, "the stalled router leads again at the end")
        return figures, promises

    def first_sequenced(self, url, standby):
        """When the standby's first term wrote its first position (its log
        says which), or None."""
        begun = routerlog.first_positions(standby)
        return written_at(url, begun[0][1]) if begun else None

    def check_delivery(self, promises, run, verdict, figures):
        promises.check(not run.late, f"production ended before the fault did "
                                     f"({', '.join(run.late)} ran late): a longer run is needed")
        promises.check(not verdict.problems, "the masters' deliveries: "
                       + "; ".join(verdict.problems))
        promises.check(figures['lost'] == 0, f"{figures['lost']} messages lost")
        promises.check(figures['duplicated'] == 0,
                       f"{figures['duplicated']} messages delivered twice")

    def check_journal(self, promises, url, routers, figures):
        missing, misnumbered = journal_gaps(url)
        promises.check((missing, misnumbered) == (0, 0),
                       f"the journal: {missing} positions missing, {misnumbered} "
                       "per-key numbers out of turn")
        promises.check(figures['numbered_twice'] == 0,
                       f"{figures['numbered_twice']} commits met a position already "
                       "numbered (entries_pkey in the routers' logs)")
        promises.check(figures['journaled_twice'] == 0,
                       f"{figures['journaled_twice']} messages journaled twice")
