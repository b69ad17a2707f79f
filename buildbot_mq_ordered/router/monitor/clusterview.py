"""What the router's monitor knows of the cluster, and what it concludes.

Pure: no reactor, no session. The monitor (component.py) feeds it the sequencer's
``info`` answers (or their failure), the masters' reports and the stream's
events, each with the time it arrived; ``status(now)`` is the one dict that
the ``status`` procedure returns, and ``problems`` / ``router_problem``
are the verdicts the ``status`` command, ``/healthz`` and the dashboard
share.

Times are the monitor's own (a report's age is measured from its arrival):
masters' clocks need not agree with the router's.
"""

from collections import deque

# a master that has not reported for this long is stale (reports come every
# 2 s: a few lost ones are not yet a problem)
STALE_AFTER = 10.0
# ... and forgotten after this long (a master stopped without a last report)
FORGET_AFTER = 600.0
# messages per second are counted over this window
RATE_WINDOW = 60.0
# what a report must carry to be kept (any other key is passed on as is)
REPORT_KEYS = ('master', 'producer_id', 'delivered_pos', 'outbox', 'buffer', 'skipped',
               'replayed', 'reconnects')
# what info() may tell beyond stream_id/head/first_pos: shown when present
INFO_EXTRAS = ('term', 'leader', 'leader_alive', 'journal_rows', 'journal_bytes')


def _well_formed(report):
    return (isinstance(report, dict) and isinstance(report.get('master'), str)
            and all(k in report for k in REPORT_KEYS))


class ClusterView:
    """Owns what the monitor last heard: the sequencer's info or role, each
    master's last report, the stream's recent events. ``Monitor`` feeds it
    and reads ``status(now)``."""

    def __init__(self, stale_after=STALE_AFTER, forget_after=FORGET_AFTER,
                 window=RATE_WINDOW):
        self.stale_after = stale_after
        self.forget_after = forget_after
        self.window = window
        self.info = None           # the sequencer's last info() answer
        self.info_at = None
        self.info_error = 'not asked yet'
        # master name -> (report, arrival time, the head when it arrived)
        self.masters = {}
        self.sequenced = 0         # stream entries seen since the monitor started
        self.head_seen = 0         # the highest position seen on the stream
        self.stream_seen = None
        self.ignored_reports = 0
        self._recent = deque()     # (arrival time, entries) of the last window
        self._since = None         # the first event: a younger monitor's window is shorter

    # -- events ---------------------------------------------------------------

    def _saw(self, now):
        if self._since is None:
            self._since = now

    def on_info(self, info, now):
        self._saw(now)
        if not (isinstance(info, dict) and all(
                k in info for k in ('stream_id', 'head', 'first_pos'))):
            return self.on_info_failed('malformed info answer', now)
        self.info, self.info_at, self.info_error = info, now, None

    def on_info_failed(self, reason, now):
        self._saw(now)
        self.info, self.info_error = None, reason

    def on_role(self, role, reason, now):
        """No info here, but the sequencer's role (``Sequencer.role``): a
        standby, which knows whether a leader holds the lease elsewhere."""
        if not (isinstance(role, dict) and not role.get('leader')):
            return self.on_info_failed(reason, now)
        self._saw(now)
        self.info = {'leader': False, 'leader_alive': bool(role.get('leader_alive')),
                     'term': role.get('term')}
        self.info_at, self.info_error = now, None

    def on_report(self, report, now):
        if not _well_formed(report):
            self.ignored_reports += 1
            return
        if report.get('state') == 'stopped':
            self.masters.pop(report['master'], None)   # stopped cleanly: not stale
        else:
            self.masters[report['master']] = (report, now, self.head())

    def on_stream(self, stream_id, entries, now):
        """A stream event: its stream id and entries [pos, seq, key, data, term_id]."""
        self._saw(now)
        if not isinstance(entries, list) or not entries:
            return
        if stream_id != self.stream_seen:
            self.stream_seen, self.head_seen = stream_id, 0
        self.sequenced += len(entries)
        last = entries[-1]
        if isinstance(last, (list, tuple)) and last and isinstance(last[0], int):
            self.head_seen = max(self.head_seen, last[0])
        self._recent.append((now, len(entries)))

    # -- what it concludes ------------------------------------------------------

    def head(self):
        """The sequencer's head: its last info, or a later stream event."""
        if self.info is None or 'head' not in self.info:
            return None     # none known, or a standby's (no stream here)
        head = self.info['head']
        if self.stream_seen == self.info['stream_id']:
            head = max(head, self.head_seen)
        return head

    def rate(self, now):
        while self._recent and self._recent[0][0] < now - self.window:
            self._recent.popleft()
        span = self.window if self._since is None else min(self.window, now - self._since)
        return sum(n for _, n in self._recent) / max(span, 1.0)

    def master_row(self, report, arrived, head_then, head, stream_id, now):
        age = now - arrived
        stale = age > self.stale_after
        # lag: as of its report (what was sequenced meanwhile is not its
        # delay); a stale master's against the head now, so that it grows
        if not stale and head_then is not None:
            head = head_then
        delivered = report['delivered_pos']
        same_stream = report.get('stream_id') == stream_id
        lag = (max(0, head - delivered)
               if head is not None and delivered is not None and same_stream else None)
        row = {k: report.get(k) for k in REPORT_KEYS + ('stream_id', 'delivered', 'produced')}
        row.update(lag=lag, age=round(age, 3), stale=stale,
                   state='stale' if stale else report.get('state', 'joined'))
        return row

    def status(self, now):
        for name, (_, arrived, _) in list(self.masters.items()):
            if now - arrived > self.forget_after:
                del self.masters[name]
        info = self.info or {}
        head = self.head()
        status = {
            'stream_id': info.get('stream_id'),
            'head': head,
            'first_pos': info.get('first_pos'),
            'sequencer': self.sequencer_state(),
            'sequencer_error': self.info_error,
            'info_age': None if self.info_at is None else round(now - self.info_at, 3),
            'rate': round(self.rate(now), 3),
            'sequenced_total': self.sequenced,
            'stale_after': self.stale_after,
            'masters': [self.master_row(r, t, h, head, info.get('stream_id'), now)
                        for _, (r, t, h) in sorted(self.masters.items())],
        }
        for k in INFO_EXTRAS:
            status[k] = info.get(k)
        if self.info is not None and 'leader' not in info:
            status['leader'] = True   # one router: the sequencer that answers leads
        status['problems'] = problems(status)
        return status

    def sequencer_state(self):
        if self.info is None:
            return None
        return 'leading' if self.info.get('leader', True) else 'standby'


def router_problem(status):
    """Why this router is unhealthy (``/healthz``), or None: its sequencer
    leads, or stands by while it sees a live leader."""
    state = status['sequencer']
    if state is None:
        return f"no sequencer answers on this router ({status['sequencer_error']})"
    if state == 'standby' and not status.get('leader_alive'):
        return "the sequencer stands by and sees no live leader"
    return None


def problems(status, max_lag=None):
    """Every reason the cluster is unhealthy (``status``'s exit code): no
    leader, a stale master, a lag beyond max_lag."""
    out = []
    router = router_problem(status)
    if router:
        out.append(router)
    for m in status['masters']:
        if m['stale']:
            out.append(f"master {m['master']} is stale: no report for {m['age']:.0f}s "
                       f"(stale after {status['stale_after']:.0f}s)")
        if max_lag is not None and m['lag'] is not None and m['lag'] > max_lag:
            out.append(f"master {m['master']} lags {m['lag']} positions "
                       f"(more than {max_lag})")
    return out
