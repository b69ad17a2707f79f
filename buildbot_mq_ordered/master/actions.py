"""What the master's pure cores (``StreamFollower``, ``Producer``) decide,
as actions their I/O shells carry out, and how a shell logs a ``Report``."""

from collections import namedtuple

from twisted.python import log

# entries to hand to the local consumers, in order
Deliver = namedtuple('Deliver', 'entries')
# call the sequencer's replay(first, count); answer with this token
Replay = namedtuple('Replay', 'token first count')
# a line for the operator: level is 'error' (a loss or a surprise: logged as
# an ``error`` exception, as Buildbot logs errors) or 'info'
Report = namedtuple('Report', 'level text error', defaults=(RuntimeError,))
# call retry() after delay seconds (a replay failed without a leave)
RetryLater = namedtuple('RetryLater', 'delay')
# call the sequencer's info() (for its term history); answer with this token
AskInfo = namedtuple('AskInfo', 'token')


def report(actions):
    """Log the Reports among a core's actions, as Buildbot logs."""
    for a in actions:
        if isinstance(a, Report):
            if a.level == 'error':
                log.err(a.error(a.text))
            else:
                log.msg(a.text)


def delivering(entries):
    """A Deliver of entries, if there are any, as a list of actions."""
    return [Deliver(entries)] if entries else []
